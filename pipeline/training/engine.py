"""The training loop shared by every model family: plain code, as in torchvision's references.

One process, or one per device under `torchrun` (DDP: gloo on CPU, NCCL on CUDA). A checkpoint
every `checkpoint_every` steps; a killed run started again resumes from it and ends on the same
step count. Losses go to a tqdm bar and to dvclive.
"""
from __future__ import annotations

import math
import os
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from pipeline.training import checkpoint
from pipeline.training.config import TrainConfig
from pipeline.training.data import EpochSampler, collate


def distributed_setup() -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises the process group when run under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on norms and biases, as the detection references do.
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then the chosen schedule over the remaining steps."""
    if step < cfg.warmup_steps:
        return 1e-3 + (1 - 1e-3) * step / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    if cfg.schedule == "step":
        return 0.1 ** sum(progress >= m for m in (2 / 3, 8 / 9))
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def to_device(images, targets, device):
    images = [image.to(device, non_blocking=True) for image in images]
    targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
    return images, targets


def train(model: torch.nn.Module, dataset, cfg: TrainConfig, out_dir: Path, *, run_id: str = "",
          max_steps: int | None = None, progress: bool = True) -> dict:
    """Train `model` on `dataset` (a `TrainDataset`), writing checkpoints into `out_dir`.

    Resumes from `out_dir/last.pt` when it was written by a run with the same `run_id` (a hash of
    everything that defines the run); a checkpoint of another run is ignored, never continued.
    `max_steps` stops early (tests, interruption drills) without changing the schedule.
    Returns the step counts and the last logged losses.
    """
    rank, world, device = distributed_setup()
    torch.manual_seed(cfg.seed)
    model.to(device)
    optimizer = build_optimizer(model, cfg)
    steps_per_epoch = math.ceil(math.ceil(len(dataset) / world) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, cfg))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    step = 0
    last = out_dir / checkpoint.LAST
    state = checkpoint.load(last) if last.exists() else None
    if state is not None and state.get("run_id") != run_id:
        if rank == 0:
            print(f"{last} belongs to another configuration: training from scratch")
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])  # RPN/RoI sampling draws from it
        step = int(state["step"])
    first_step = step
    # Every family's losses reach all its parameters (empty RoI or attribute batches give exact zeros
    # that stay in the graph), so DDP need not search the graph for unused ones each step.
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    def save(path: Path) -> None:
        if rank == 0:
            checkpoint.save(path, model=model.state_dict(), optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict(), scaler=scaler.state_dict(), step=step,
                            run_id=run_id, torch_rng=torch.get_rng_state())

    live = _live(out_dir, resume=step > 0) if rank == 0 else None
    bar = tqdm(total=total, initial=step, disable=not progress or rank != 0, desc=out_dir.name, dynamic_ncols=True)
    logged: dict[str, float] = {}
    stop = total if max_steps is None else min(total, max_steps)
    model.train()
    while step < stop:
        epoch, done_in_epoch = divmod(step, steps_per_epoch)
        dataset.epoch = epoch
        sampler = EpochSampler(len(dataset), cfg.seed, epoch, rank, world, skip=done_in_epoch * cfg.batch_size)
        loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                                             num_workers=cfg.workers, pin_memory=device.type == "cuda",
                                             # its own generator: making a loader must not draw from
                                             # the global RNG, or a resumed run would diverge
                                             generator=torch.Generator().manual_seed(cfg.seed + epoch))
        for images, targets in loader:
            images, targets = to_device(images, targets, device)
            with torch.autocast("cuda", dtype=torch.float16) if use_amp else nullcontext():
                losses = ddp(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {step}: { {k: float(v) for k, v in losses.items()} }")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.clip_grad_norm > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if step % cfg.log_every == 0 or step == stop:
                logged = {k: v.item() for k, v in losses.items()} | {"loss": loss.item()}
                if live is not None:
                    live.step = step  # points are indexed by optimizer step, also after a resume
                    for name, value in logged.items():
                        live.log_metric(f"train/{name}", value)
                    live.log_metric("train/lr", scheduler.get_last_lr()[0])
                    live.next_step()
            if step % cfg.checkpoint_every == 0 or step == stop:
                save(last)
            if step >= stop:
                break
    bar.close()
    if live is not None:
        live.end()
    if world > 1:
        dist.barrier()
    return {"step": step, "total_steps": total, "resumed_from_step": first_step, "losses": logged}


def _live(out_dir: Path, resume: bool):
    from dvclive import Live

    return Live(dir=str(out_dir / "dvclive"), resume=resume, save_dvc_exp=False, dvcyaml=None, report=None)

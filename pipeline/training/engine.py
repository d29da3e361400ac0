"""The training loop shared by every model family: plain code, as in torchvision's references.

One process, or one per device under DDP (gloo on CPU, NCCL on CUDA). A checkpoint every
`checkpoint_every` steps; a killed run started again resumes from it and ends on the same weights.
A step whose loss or gradient is not finite changes nothing and is counted; `max_bad_steps` of them
in a row stop the run. Losses go to a tqdm bar and to dvclive.
"""
from __future__ import annotations

import math
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from pipeline.errors import InputError
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


@dataclass
class Run:
    """What one training process holds: the model (DDP-wrapped in `net`), its optimisation state, counters."""

    model: torch.nn.Module
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    cfg: TrainConfig
    run_key: str
    rank: int
    world: int
    device: torch.device
    step: int = 0
    bad_in_a_row: int = 0
    skipped: int = 0
    logged: dict = field(default_factory=dict)

    @property
    def amp(self) -> bool:
        return self.scaler.is_enabled()

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "step": self.step,
                "skipped": self.skipped, "run_key": self.run_key, "torch_rng": torch.get_rng_state()}

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])  # RPN/RoI sampling draws from it
        self.step = int(state["step"])
        self.skipped = int(state.get("skipped", 0))


def train(model: torch.nn.Module, dataset, cfg: TrainConfig, out_dir: Path, *, run_key: str = "",
          max_steps: int | None = None, progress: bool = True) -> dict:
    """Train `model` on `dataset` (a `TrainDataset`), writing checkpoints into `out_dir`.

    Resumes from `out_dir/last.pt`, which must be this run's (`run_key`): the caller sets other
    runs' checkpoints aside. `max_steps` stops early (tests, interruption drills) without changing
    the schedule. Returns the step counts, skipped steps and the last logged losses.
    """
    rank, world, device = distributed_setup()
    torch.manual_seed(cfg.seed)
    run = start(model, cfg, run_key, rank, world, device, steps_per_epoch(len(dataset), world, cfg))
    last = out_dir / checkpoint.LAST
    if last.exists():
        state = checkpoint.load(last)
        if state.get("run_key") != run_key:
            raise ValueError(f"{last} is another run's checkpoint")
        run.restore(state)
    first_step = run.step
    total = cfg.epochs * steps_per_epoch(len(dataset), world, cfg)
    stop = total if max_steps is None else min(total, max_steps)
    live = _live(out_dir, resume=run.step > 0) if rank == 0 else None
    bar = tqdm(total=total, initial=run.step, disable=not progress or rank != 0, desc=out_dir.name, dynamic_ncols=True)
    model.train()
    while run.step < stop:
        train_one_epoch(run, dataset, stop, last, live, bar)
    bar.close()
    if live is not None:
        live.end()
    if world > 1:
        dist.barrier()
    return {"step": run.step, "total_steps": total, "resumed_from_step": first_step, "skipped_steps": run.skipped,
            "losses": run.logged}


def steps_per_epoch(images: int, world: int, cfg: TrainConfig) -> int:
    return math.ceil(math.ceil(images / world) / cfg.batch_size)


def start(model, cfg: TrainConfig, run_key: str, rank: int, world: int, device, per_epoch: int) -> Run:
    """A fresh run at step 0: model on its device, optimizer, schedule, grad scaler, DDP wrapper."""
    model.to(device)
    optimizer = build_optimizer(model, cfg)
    total = cfg.epochs * per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, cfg))
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")
    # Every family's losses reach all its parameters (empty RoI or attribute batches give exact zeros
    # that stay in the graph), so DDP need not search the graph for unused ones each step.
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    return Run(model, net, optimizer, scheduler, scaler, cfg, run_key, rank, world, device)


def train_one_epoch(run: Run, dataset, stop: int, last: Path, live, bar) -> None:
    """The rest of the epoch that `run.step` is in, or up to step `stop`."""
    cfg = run.cfg
    per_epoch = steps_per_epoch(len(dataset), run.world, cfg)
    epoch, done_in_epoch = divmod(run.step, per_epoch)
    dataset.epoch = epoch
    sampler = EpochSampler(len(dataset), cfg.seed, epoch, run.rank, run.world, skip=done_in_epoch * cfg.batch_size)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                                         num_workers=cfg.workers, pin_memory=run.device.type == "cuda",
                                         # its own generator: making a loader must not draw from
                                         # the global RNG, or a resumed run would diverge
                                         generator=torch.Generator().manual_seed(cfg.seed + epoch))
    for images, targets in loader:
        losses = train_step(run, *to_device(images, targets, run.device))
        bar.update(1)
        bar.set_postfix(loss=f"{sum(losses.values()).item():.3f}", lr=f"{run.scheduler.get_last_lr()[0]:.2e}")
        if run.step % cfg.log_every == 0 or run.step == stop:
            log(run, losses, live)
        if run.step % cfg.checkpoint_every == 0 or run.step == stop:
            if run.rank == 0:
                checkpoint.save(last, **run.state())
        if run.step >= stop:
            break


def train_step(run: Run, images, targets) -> dict[str, torch.Tensor]:
    """One optimizer step, or none when the loss or the gradient is not finite; the schedule moves on
    either way, so a resumed run finds the data where the step counter says."""
    with torch.autocast("cuda", dtype=torch.float16) if run.amp else nullcontext():
        losses = run.net(images, targets)
    loss = sum(losses.values())
    run.optimizer.zero_grad(set_to_none=True)
    finite = all_ranks(torch.isfinite(loss.detach()), run)
    if finite:
        run.scaler.scale(loss).backward()
        run.scaler.unscale_(run.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.clip_grad_norm or math.inf)
        # Under AMP the scaler skips overflowing steps itself and lowers its scale: not a bad step.
        finite = run.amp or bool(torch.isfinite(norm))
        if finite:
            run.scaler.step(run.optimizer)
        run.scaler.update()
    run.scheduler.step()
    run.step += 1
    losses = {name: value.detach() for name, value in losses.items()}
    if finite:
        run.bad_in_a_row = 0
    else:
        record_bad_step(run, losses)
    return losses


def all_ranks(flag: torch.Tensor, run: Run) -> bool:
    """`flag` true in every process: DDP ranks must agree to skip a backward pass, or they deadlock."""
    if run.world == 1:
        return bool(flag)
    agreed = flag.to(run.device, torch.int32).reshape(1)
    dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
    return bool(agreed.item())


def record_bad_step(run: Run, losses: dict[str, torch.Tensor]) -> None:
    run.bad_in_a_row += 1
    run.skipped += 1
    values = ", ".join(f"{name} {float(value):.4g}" for name, value in losses.items())
    if run.rank == 0:
        print(f"step {run.step}: non-finite loss or gradient ({values}): no update ({run.skipped} skipped so far)",
              flush=True)
    if run.bad_in_a_row >= run.cfg.max_bad_steps:
        raise InputError(f"training stopped at step {run.step}: {run.bad_in_a_row} steps in a row with a non-finite "
                         f"loss or gradient (last: {values}); lower train.lr or check the data "
                         f"(train.max_bad_steps is {run.cfg.max_bad_steps})")


def log(run: Run, losses: dict[str, torch.Tensor], live) -> None:
    run.logged = {k: v.item() for k, v in losses.items()} | {"loss": sum(losses.values()).item()}
    if live is None:
        return
    live.step = run.step  # points are indexed by optimizer step, also after a resume
    for name, value in run.logged.items():
        live.log_metric(f"train/{name}", value)
    live.log_metric("train/lr", run.scheduler.get_last_lr()[0])
    live.log_metric("train/skipped_steps", run.skipped)
    live.next_step()


def _live(out_dir: Path, resume: bool):
    from dvclive import Live

    return Live(dir=str(out_dir / "dvclive"), resume=resume, save_dvc_exp=False, dvcyaml=None, report=None)

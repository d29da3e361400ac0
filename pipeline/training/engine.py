"""The training loop shared by every model family: plain code, as in torchvision's references.

One process, or one per device under DDP (gloo on CPU, NCCL on CUDA). An optimizer step sums the
gradients of `accumulate` micro-batches. A checkpoint every `checkpoint_every` steps; a killed run
started again resumes from it and ends on the same weights. A step whose loss or gradient is not
finite changes nothing and is counted; `max_bad_steps` of them in a row stop the run. Losses go to
a tqdm bar and to dvclive, with held-out scores every `validate_every` steps.

Model files (`model.pt` at the end, `step<N>.pt`, `best.pt`) hold `model`, the weights predict
uses: the EMA of the weights when `ema_decay` is set, the trained weights otherwise; with EMA the
trained weights are kept beside them as `raw_model`.
"""
from __future__ import annotations

import math
import os
import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from dvclive import Live
from timm.layers import convert_sync_batchnorm
from tqdm import tqdm

from pipeline.errors import InputError
from pipeline.models.init_weights import BACKBONE
from pipeline.training import checkpoint
from pipeline.training.config import TrainConfig
from pipeline.training.data import EpochSampler, collate
from pipeline.training.ema import EMA


BEST = "best.pt"
BEST_BY = "val/ap_iou_f1"  # the held-out score that picks best.pt: Fashionpedia's headline metric
STEP_FILE = re.compile(r"step(\d+)\.pt")
AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


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


def close_distributed() -> None:
    """Leave the process group before the interpreter exits: torchrun's workers that exit with Gloo's
    threads still running can abort ("terminate called without an active exception", SIGABRT), and the
    other node's launcher then fails as the rendezvous store goes away."""
    if dist.is_initialized():
        dist.destroy_process_group()


def same_on_every_rank(value, world: int, what: str) -> None:
    """Stop every rank with the same one line when a rank's `value` differs from rank 0's.

    Each node reads the cache, folds, configs and the run folder from its own file system; a node
    that sees other files would train other images or resume from another step, and DDP would hang
    or mix two runs.
    """
    if world == 1:
        return
    values = [None] * world
    dist.all_gather_object(values, value)
    for rank, other in enumerate(values):
        if other != values[0]:
            raise InputError(f"rank {rank} sees {what} {other} where rank 0 sees {values[0]}: every node needs the "
                             f"cache, folds, configs and run folder at the same paths (a shared file system)")


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, world: int = 1,
                    images_per_item: float = 1.0) -> torch.optim.Optimizer:
    """AdamW or SGD at `cfg.scaled_lr(world, images_per_item)`, the backbone's parameters (a family's
    `BACKBONE` prefix) at `backbone_lr_multiplier` times that. No weight decay on norms and biases, as
    the detection references do. The schedule multiplies every group's lr alike."""
    lr = cfg.scaled_lr(world, images_per_item)
    prefix = BACKBONE.get(getattr(getattr(model, "config", None), "family", None))
    groups = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            backbone = prefix is not None and name.startswith(prefix)
            groups.setdefault((backbone, p.ndim > 1), []).append(p)
    optimizer_groups = [
        {"params": params, "lr": lr * (cfg.backbone_lr_multiplier if backbone else 1.0),
         "weight_decay": cfg.weight_decay if decay else 0.0}
        for (backbone, decay), params in sorted(groups.items())
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(optimizer_groups, lr=lr, momentum=cfg.momentum)
    return torch.optim.AdamW(optimizer_groups, lr=lr)


def lr_factor(step: int, total: int, warmup: int, cfg: TrainConfig) -> float:
    """Linear warm-up over `warmup` steps, then the chosen schedule: `step` drops at its shares of all
    `total` steps (Detectron2's 60k and 80k of 90k iterations: 2/3 and 8/9), cosine decays over the
    steps after warm-up."""
    if step < warmup:
        return 1e-3 + (1 - 1e-3) * step / warmup
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return cfg.step_factor ** sum(step >= round(m * total) for m in cfg.step_milestones)
    progress = (step - warmup) / max(1, total - warmup)
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
    ema: EMA | None
    cfg: TrainConfig
    run_key: str
    rank: int
    world: int
    device: torch.device
    total: int                       # optimizer steps of the whole run
    step: int = 0
    bad_in_a_row: int = 0
    skipped: int = 0
    best: float = -math.inf          # the best BEST_BY score so far
    logged: dict = field(default_factory=dict)

    def state(self) -> dict:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "step": self.step,
                 "skipped": self.skipped, "best": self.best, "run_key": self.run_key,
                 "torch_rng": torch.get_rng_state()}
        return state | ({"ema": self.ema.state_dict()} if self.ema is not None else {})

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["torch_rng"])  # RPN/RoI sampling draws from it
        self.step = int(state["step"])
        self.skipped = int(state.get("skipped", 0))
        self.best = float(state.get("best", -math.inf))

    @property
    def end(self) -> int:
        """The step the run ends at: `total`, or `step_cap` (a rehearsal) when smaller."""
        return self.cfg.end_step(self.total)

    def weights(self) -> dict:
        """What model files hold: `model` for predict (the EMA when on) and, with EMA, `raw_model`."""
        if self.ema is None:
            return {"model": self.model.state_dict()}
        return {"model": self.ema.state_dict(), "raw_model": self.model.state_dict()}


def train(model: torch.nn.Module, dataset, cfg: TrainConfig, out_dir: Path, *, run_key: str = "",
          max_steps: int | None = None, progress: bool = True, validate=None, model_info: dict | None = None) -> dict:
    """Train `model` on `dataset` (a `TrainDataset`), writing checkpoints into `out_dir`.

    Resumes from `out_dir/last.pt`, which must be this run's (`run_key`): the caller sets other
    runs' checkpoints aside. `max_steps` stops early (tests, interruption drills) without changing
    the schedule; `cfg.step_cap` ends the run early (a rehearsal), the schedule still the whole run's.
    `validate(model) -> {name: score}` scores held-out images (rank 0 calls it); `model_info` goes into
    every model file beside the weights (the config that builds the model). Writes `model.pt` when the
    run ends (complete, or capped). Returns the step counts, skipped steps and the last logged losses.
    """
    rank, world, device = distributed_setup()
    torch.manual_seed(cfg.seed)
    per_item = images_per_item(dataset)
    total = total_steps(cfg, len(dataset), world, per_item)
    run = start(model, cfg, run_key, rank, world, device, total)
    last = out_dir / checkpoint.LAST
    if last.exists():
        state = checkpoint.load(last)
        if state.get("run_key") != run_key:
            raise ValueError(f"{last} is another run's checkpoint")
        run.restore(state)
    same_on_every_rank(run.step, world, "the step to resume from")
    first_step = run.step
    stop = run.end if max_steps is None else min(run.end, max_steps)
    live = _live(out_dir, resume=run.step > 0) if rank == 0 else None
    bar = tqdm(total=total, initial=run.step, disable=not progress or rank != 0, desc=out_dir.name, dynamic_ncols=True)
    outputs = Outputs(out_dir, {"run_key": run_key, **(model_info or {}), **capped(run)}, validate, live, stop)
    model.train()
    while run.step < stop:
        train_one_epoch(run, dataset, outputs, bar)
    bar.close()
    if rank == 0 and run.step >= run.end:
        checkpoint.save(out_dir / checkpoint.FINAL, **run.weights(), **outputs.model_info)
    if live is not None:
        live.end()
    if world > 1:
        dist.barrier()
    return {"step": run.step, "total_steps": total, "end_step": run.end, "resumed_from_step": first_step,
            "skipped_steps": run.skipped, "losses": run.logged}


def capped(run: Run) -> dict:
    """What model files of a run ended by `step_cap` say beside the weights: a rehearsal's, not a trained model."""
    if run.end >= run.total:
        return {}
    return {"capped": f"{run.end} of {run.total} steps (train.step_cap): a rehearsal's weights, not a trained model"}


@dataclass
class Outputs:
    """Where a run reports: its folder, what model files hold beside weights, the validation, dvclive."""
    out_dir: Path
    model_info: dict
    validate: object           # callable(model) -> {name: score}, or None
    live: object               # dvclive.Live on rank 0, else None
    stop: int                  # the step this invocation stops at


def steps_per_epoch(items: int, world: int, cfg: TrainConfig) -> int:
    """Optimizer steps: micro-batches of `batch_size` per process, `accumulate` of them per step."""
    return math.ceil(math.ceil(math.ceil(items / world) / cfg.batch_size) / cfg.accumulate)


def images_per_item(dataset) -> float:
    """Images in one of the dataset's items: one, unless the dataset says otherwise (DeepFashion2's
    items are an image and its partner photo)."""
    return float(getattr(dataset, "images_per_item", 1.0))


def total_steps(cfg: TrainConfig, items: int, world: int, per_item: float = 1.0) -> int:
    """The run's optimizer steps: `steps` (of `lr_reference_batch` images) over as many images at the
    run's global batch, or `epochs` passes over the images (items / per_item items each)."""
    if cfg.steps is not None:
        return max(1, cfg.run_steps(cfg.steps, world, per_item))
    return cfg.epochs * steps_per_epoch(math.ceil(items / per_item), world, cfg)


def start(model, cfg: TrainConfig, run_key: str, rank: int, world: int, device, total: int,
          per_item: float = 1.0) -> Run:
    """A fresh run at step 0: model on its device, EMA, optimizer, schedule, grad scaler, DDP wrapper."""
    model.to(device, memory_format=torch.channels_last if cfg.channels_last else torch.preserve_format)
    if cfg.sync_bn and world > 1:
        sync_batch_norm(model, device)
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay else None
    optimizer = build_optimizer(model, cfg, world, per_item)
    warmup = cfg.run_steps(cfg.warmup_steps, world, per_item)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, warmup, cfg))
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and cfg.amp_dtype == "float16" and device.type == "cuda")
    # Every family's losses reach all its parameters (empty RoI or attribute batches give exact zeros
    # that stay in the graph), so DDP need not search the graph for unused ones each step.
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    return Run(model, net, optimizer, scheduler, scaler, ema, cfg, run_key, rank, world, device, total)


def sync_batch_norm(model: torch.nn.Module, device: torch.device) -> None:
    """Trainable batch norms become SyncBatchNorm (statistics over every process's images), in place.

    timm's converter, not torch's: torch's would turn timm's BatchNormAct2d into a bare SyncBatchNorm
    and drop its activation. Frozen norms (timm's and torchvision's Frozen* classes) are left as they are.
    """
    if device.type == "cpu":
        raise InputError("train.sync_bn needs GPUs: torch's SyncBatchNorm has no CPU kernels (set it false here)")
    convert_sync_batchnorm(model)  # the model is no batch norm itself: its children are replaced in place


def micro_batch_groups(loader, size: int):
    """The loader's batches in lists of `size`, one list per optimizer step; an epoch's last may be shorter."""
    group = []
    for batch in loader:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def train_one_epoch(run: Run, dataset, outputs: Outputs, bar) -> None:
    """The rest of the epoch that `run.step` is in, or up to step `outputs.stop`."""
    cfg = run.cfg
    per_epoch = steps_per_epoch(len(dataset), run.world, cfg)
    epoch, done_in_epoch = divmod(run.step, per_epoch)
    dataset.epoch = epoch
    sampler = EpochSampler(len(dataset), cfg.seed, epoch, run.rank, run.world,
                           skip=done_in_epoch * cfg.accumulate * cfg.batch_size)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                                         num_workers=cfg.workers, pin_memory=run.device.type == "cuda",
                                         # its own generator: making a loader must not draw from
                                         # the global RNG, or a resumed run would diverge
                                         generator=torch.Generator().manual_seed(cfg.seed + epoch))
    for group in micro_batch_groups(loader, cfg.accumulate):
        losses = train_step(run, group)
        bar.update(1)
        bar.set_postfix(loss=f"{sum(losses.values()).item():.3f}", lr=f"{run.scheduler.get_last_lr()[0]:.2e}")
        after_step(run, losses, outputs)
        if run.step >= outputs.stop:
            break


def train_step(run: Run, group: list) -> dict[str, torch.Tensor]:
    """One optimizer step on a group of micro-batches, or none when a loss or the gradient is not
    finite; the schedule moves on either way, so a resumed run finds the data where the step counter says."""
    run.optimizer.zero_grad(set_to_none=True)
    losses = {}
    for i, (images, targets) in enumerate(group):
        micro, finite = backward(run, images, targets, share=1 / len(group), sync=i == len(group) - 1)
        losses = {name: losses.get(name, 0) + value / len(group) for name, value in micro.items()}
        if not finite:
            break
    if finite:
        run.scaler.unscale_(run.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.clip_grad_norm or math.inf)
        # Under a grad scaler, overflowing steps are skipped by it, which lowers its scale: not a bad step.
        finite = run.scaler.is_enabled() or bool(torch.isfinite(norm))
        if finite:
            run.scaler.step(run.optimizer)
            if run.ema is not None:
                run.ema.update(run.model, run.step + 1)
        run.scaler.update()
    run.scheduler.step()
    run.step += 1
    if finite:
        run.bad_in_a_row = 0
    else:
        record_bad_step(run, losses)
    return losses


def backward(run: Run, images, targets, share: float, sync: bool) -> tuple[dict[str, torch.Tensor], bool]:
    """Losses of one micro-batch and whether they are finite in every process; if so, their gradient
    times `share` is added. DDP all-reduces the gradients only on the step's last micro-batch (`sync`)."""
    images, targets = to_device(images, targets, run.device)
    with nullcontext() if sync or run.world == 1 else run.net.no_sync():
        with autocast(run):
            losses = run.net(images, targets)
        loss = sum(losses.values())
        finite = all_ranks(torch.isfinite(loss.detach()), run)
        if finite:
            run.scaler.scale(loss * share).backward()
    return {name: value.detach() for name, value in losses.items()}, finite


def autocast(run: Run):
    """Mixed precision when `amp`: float16 on CUDA only, bfloat16 on CUDA or the CPU."""
    if not run.cfg.amp or (run.device.type != "cuda" and run.cfg.amp_dtype != "bfloat16"):
        return nullcontext()
    return torch.autocast(run.device.type, dtype=AMP_DTYPES[run.cfg.amp_dtype])


def after_step(run: Run, losses: dict[str, torch.Tensor], outputs: Outputs) -> None:
    """Held-out scores, dvclive points and checkpoints that fall due at this step."""
    cfg = run.cfg
    scores = validation(run, outputs.validate)
    if run.step % cfg.log_every == 0 or run.step == outputs.stop or scores:
        log(run, losses, outputs.live, scores)
    if run.rank != 0:
        return
    if scores.get(BEST_BY, -math.inf) > run.best:  # before last.pt, which records the best so far
        run.best = scores[BEST_BY]
        checkpoint.save(outputs.out_dir / BEST, **run.weights(), **outputs.model_info, step=run.step, score=run.best)
    if run.step % cfg.checkpoint_every == 0 or run.step == outputs.stop:
        checkpoint.save(outputs.out_dir / checkpoint.LAST, **run.state())
    if cfg.keep_checkpoints and run.step % cfg.checkpoint_every == 0:
        keep_step_file(run, outputs)


def keep_step_file(run: Run, outputs: Outputs) -> None:
    """step<N>.pt, a model file of this step; only the last `keep_checkpoints` of them stay."""
    checkpoint.save(outputs.out_dir / f"step{run.step}.pt", **run.weights(), **outputs.model_info, step=run.step)
    steps = sorted(int(m.group(1)) for p in outputs.out_dir.iterdir() if (m := STEP_FILE.fullmatch(p.name)))
    for old in steps[:-run.cfg.keep_checkpoints]:
        (outputs.out_dir / f"step{old}.pt").unlink()


def validation(run: Run, validate) -> dict[str, float]:
    """On rank 0 every `validate_every` steps and at the end: `val/*` scores of the weights model files
    hold (the EMA when on), and `val_raw/*` of the trained weights beside an EMA. Scoring draws no
    random number and changes no weight, so whether and how often it runs leaves the run as it is."""
    every = run.cfg.validate_every
    if validate is None or run.rank != 0 or not every or (run.step % every and run.step != run.end):
        return {}
    with torch.random.fork_rng(devices=[]):
        run.model.eval()
        scores = {f"val/{name}": value for name, value in validate(run.ema.module if run.ema else run.model).items()}
        if run.ema is not None:
            scores |= {f"val_raw/{name}": value for name, value in validate(run.model).items()}
        run.model.train()
    return scores


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


def log(run: Run, losses: dict[str, torch.Tensor], live, scores: dict[str, float]) -> None:
    run.logged = {k: v.item() for k, v in losses.items()} | {"loss": sum(losses.values()).item()}
    if live is None:
        return
    live.step = run.step  # points are indexed by optimizer step, also after a resume
    for name, value in run.logged.items():
        live.log_metric(f"train/{name}", value)
    for name, value in scores.items():
        live.log_metric(name, value)
    live.log_metric("train/lr", run.scheduler.get_last_lr()[0])
    live.log_metric("train/skipped_steps", run.skipped)
    live.next_step()


def _live(out_dir: Path, resume: bool):
    return Live(dir=str(out_dir / "dvclive"), resume=resume, save_dvc_exp=False, dvcyaml=None, report=None)

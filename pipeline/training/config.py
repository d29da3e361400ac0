"""Training knobs: params.yaml's `train` section, overridden per model by `models.<name>.train`.

Plain dataclasses without heavy imports: the settings tree is built from them before any command
loads torch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation of training images (`pipeline.training.transforms`)."""

    image_size: int | None = 512    # side of the square training crop; None: the model config's working
                                    # side (the family's `crop_side`), set before training
    scale_min: float = 0.5          # large-scale jitter range, relative to image_size
    scale_max: float = 2.0
    hflip: float = 0.5              # probability
    color_jitter: float = 0.2       # brightness/contrast/saturation strength; 0 disables
    min_instance_pixels: int = 4    # instances smaller than this after the crop are dropped


@dataclass(frozen=True)
class TrainConfig:
    epochs: int | None = 12          # passes over the training images; null: `steps` sets the run's length
    steps: int | None = None         # the run's length in optimizer steps of `lr_reference_batch` images (a
                                     # paper's iterations of its global batch); null: `epochs`
    batch_size: int = 2              # per process and micro-batch, in dataset items (DeepFashion2: an image
                                     # with its partner photo)
    accumulate: int = 1              # micro-batches per optimizer step (gradient accumulation); steps,
                                     # warm-up and schedule count optimizer steps
    workers: int = 2                 # DataLoader worker processes
    threads: int = 0                 # torch CPU threads; 0: torch's default (one per core), which on a
                                     # CPU competes with the DataLoader workers for the same cores
    processes: int = 1               # DDP processes started by `train` (batch_size is per process):
                                     # one per GPU; on a CPU, one per core with threads 1, workers 0
    optimizer: str = "adamw"         # adamw | sgd
    lr: float = 2e-4
    lr_reference_batch: int = 0      # > 0: the global batch in images that `lr`, `warmup_steps` and `steps`
                                     # are stated for: lr scales linearly with the run's global batch, steps
                                     # and warm-up inversely (the same images); 0: all as they are
    backbone_lr_multiplier: float = 1.0  # the backbone's lr (and warm-up, schedule) is lr times this
    momentum: float = 0.9            # sgd only
    weight_decay: float = 1e-4
    warmup_steps: int = 100          # linear warm-up from lr/1000
    schedule: str = "cosine"         # cosine | step | constant
    step_milestones: tuple[float, ...] = (2 / 3, 8 / 9)  # step: shares of all the run's steps, warm-up included
    step_factor: float = 0.1         # (as Detectron2's and MMDetection's milestones count), where the lr is
                                     # multiplied by step_factor (2/3, 8/9: Detectron2's 1x and 2x)
    clip_grad_norm: float = 10.0     # 0 disables
    amp: bool = True                 # mixed precision: float16 on CUDA only, bfloat16 on CUDA or CPU
    amp_dtype: str = "float16"       # float16 (with a grad scaler) | bfloat16 (needs none)
    channels_last: bool = False      # NHWC weights and activations (faster convolutions on tensor cores)
    sync_bn: bool = False            # under DDP, trainable batch norms as SyncBatchNorm (GPUs only)
    ema_decay: float = 0.0           # exponential moving average of the weights; 0: off
    checkpoint_every: int = 50       # steps between resumable checkpoints
    log_every: int = 10              # steps between dvclive points
    max_bad_steps: int = 10          # non-finite losses or gradients in a row that stop the run (exit 2)
    validate_every: int = 0          # steps between scores on held-out images (dvclive val/*); 0: never
    validate_images: int = 20        # the first N held-out images of the fold; 0: all of them
    keep_checkpoints: int = 0        # the last K step<N>.pt model files kept (every checkpoint_every steps)
    seed: int = 0
    step_cap: int | None = None      # a rehearsal only (`make rehearsal`): every run ends after this many
                                     # optimizer steps, the schedule still the full run's, and writes its
                                     # model files marked capped; null: the schedule's steps
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self):
        if (self.epochs is None) == (self.steps is None):
            raise ValueError(f"set one of epochs and steps, the other null (epochs {self.epochs}, steps {self.steps})")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, not {self.steps}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer must be adamw or sgd, not {self.optimizer!r}")
        if self.schedule not in ("cosine", "step", "constant"):
            raise ValueError(f"schedule must be cosine, step or constant, not {self.schedule!r}")
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1, not {self.processes}")
        if self.max_bad_steps < 1:
            raise ValueError(f"max_bad_steps must be at least 1, not {self.max_bad_steps}")
        if self.accumulate < 1:
            raise ValueError(f"accumulate must be at least 1, not {self.accumulate}")
        if self.amp_dtype not in ("float16", "bfloat16"):
            raise ValueError(f"amp_dtype must be float16 or bfloat16, not {self.amp_dtype!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), not {self.ema_decay}")
        if list(self.step_milestones) != sorted(self.step_milestones) or not all(
                0 < m < 1 for m in self.step_milestones):
            raise ValueError(f"step_milestones must be increasing shares between 0 and 1, not {self.step_milestones}")
        if self.backbone_lr_multiplier <= 0:
            raise ValueError(f"backbone_lr_multiplier must be positive, not {self.backbone_lr_multiplier}")
        if self.step_cap is not None and self.step_cap < 1:
            raise ValueError(f"step_cap must be at least 1 (or null), not {self.step_cap}")
        for name in ("validate_every", "validate_images", "keep_checkpoints", "lr_reference_batch"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")

    def weight_knobs(self) -> dict:
        """The knobs that change the trained weights, for a run's key; the others never restart a run.

        `epochs` or `steps` sets the total steps, which shapes the cosine and step schedules from
        step 0; with the constant schedule it does not, so raising it continues a finished run.
        `processes` is not here: the key holds the actual number of processes (torchrun may start
        other than it). `step_cap` is only there when set, so a capped run never has a full run's key.
        """
        knobs = {name: dataclasses.asdict(self)[name] for name in WEIGHT_KNOBS}
        if self.step_cap is None:
            del knobs["step_cap"]
        if self.schedule == "constant":
            del knobs["epochs"], knobs["steps"]
        if self.optimizer != "sgd":
            del knobs["momentum"]
        if self.schedule != "step":
            del knobs["step_milestones"], knobs["step_factor"]
        return knobs

    def end_step(self, total: int) -> int:
        """The step a run of `total` scheduled steps ends at: `total`, or `step_cap` when smaller."""
        return total if self.step_cap is None else min(total, self.step_cap)

    def global_batch(self, world: int, images_per_item: float = 1.0) -> float:
        """Images per optimizer step over all `world` processes: dataset items per step (processes x
        batch_size x accumulate) times the images an item holds (DeepFashion2's: an image and, where it
        has one, its partner photo)."""
        return world * self.batch_size * self.accumulate * images_per_item

    def scaled_lr(self, world: int, images_per_item: float = 1.0) -> float:
        """The lr a run of `world` processes uses: `lr`, or with `lr_reference_batch` set, `lr` scaled
        linearly from that global batch to the run's (the linear scaling rule of Goyal et al., 2017)."""
        if not self.lr_reference_batch:
            return self.lr
        return self.lr * self.global_batch(world, images_per_item) / self.lr_reference_batch

    def run_steps(self, reference_steps: int, world: int, images_per_item: float = 1.0) -> int:
        """Optimizer steps of `lr_reference_batch` images as the run's own steps over as many images
        (a paper's 1000 warm-up iterations of 16 images are 4000 steps of 4); as given without one."""
        if not self.lr_reference_batch:
            return reference_steps
        return round(reference_steps * self.lr_reference_batch / self.global_batch(world, images_per_item))


# TrainConfig's fields that change what a run learns, listed as `train.<name>` params of the train
# stage in dvc.yaml (with `train.processes`); workers, threads, log_every, checkpoint_every,
# max_bad_steps, validate_every, validate_images and keep_checkpoints change how a run goes and
# what it reports, not its weights. channels_last and amp_dtype are in: they change the arithmetic.
WEIGHT_KNOBS = ("epochs", "steps", "batch_size", "accumulate", "optimizer", "lr", "lr_reference_batch",
                "backbone_lr_multiplier", "momentum", "weight_decay", "warmup_steps", "schedule", "step_milestones",
                "step_factor", "clip_grad_norm", "amp", "amp_dtype", "channels_last", "sync_bn", "ema_decay", "seed",
                "step_cap", "augment")
# The source whose behaviour shapes the weights (models, losses, the loop, augmentation, data reading),
# relative to the package; dvc.yaml's train stage depends on the same files.
TRAINING_SOURCE = ("models", "training", "data/cache_reader.py", "data/ontology.py", "data/resize.py")


def training_augment(train: TrainConfig, crop_side: int) -> AugmentConfig:
    """`train.augment` with its crop side: `image_size: null` takes the side the model works at
    (its family's `crop_side`), so one params file trains each family at its own resolution."""
    if train.augment.image_size is not None:
        return train.augment
    return dataclasses.replace(train.augment, image_size=crop_side)


@dataclass(frozen=True)
class ModelEntry:
    """A model as params.yaml defines it: its name, its architecture file and its training knobs."""

    name: str
    config: Path            # the model's YAML file in configs/
    train: TrainConfig

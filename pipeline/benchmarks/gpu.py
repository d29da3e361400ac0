"""`python -m pipeline bench gpu`: each family's real-data recipe trained for a few hundred steps on
synthetic scenes, then timed in `predict`; JSON with images/s, peak GPU memory and the loss at the
start and the end. Meant for one GPU in under 8 minutes (`--max-seconds` per family bounds it).

Each family trains as the real profile (`profiles/real.yaml` over params.yaml) says: its config in `configs/real/`, its crop side
(`augment.image_size: null`), batch, accumulation, optimizer, lr scaled to the global batch, AMP dtype
and large-scale jitter, through the engine's own step (`engine.train_step`) and the training
dataset's augmentation; only the data differ: scenes the synthetic dataset's renderer draws in
memory at `--size` px, nothing read from disk. The warm-up is shortened to a fifth of the steps so
the lr reaches its value within the check. `predict` runs on the trained weights with exactly
`--detections` (100) detections per image, as `bench predict`. The goal: the profile's first model
(Attribute-Mask R-CNN R50 in the real profile) at >= 6.3 training images/s (12 epochs of 45k images in 24 h on one GPU).

`--smoke` runs the same code on the CPU with tiny images, two steps of one image, no AMP and five
detections, for the tests. `--planted-starts` trains from random checkpoints planted in each start's
published layout in a temporary TORCH_HOME / HF_HOME (`pipeline.models.planting`): a lent machine
without the network times the recipes from them (the weights' values do not change the speed).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from pipeline.benchmarks.inference import forced_detections
from pipeline.benchmarks.predict import SampleReader, Stretched
from pipeline.data import ontology as ontology_lib
from pipeline.inference.predict import predict
from pipeline.models.config import portable
from pipeline.models.factory import create_model, load_config
from pipeline.models.planting import plant
from pipeline.models.starts import named_start
from pipeline.settings.load import load_settings
from pipeline.synthetic.scene.compose import render
from pipeline.synthetic.scene.labels import Labels
from pipeline.training import engine
from pipeline.training.config import training_augment
from pipeline.training.data import TrainDataset, collate
from pipeline.training.engine import micro_batch_groups


GOAL_IMAGES_PER_SECOND = 6.3  # 45k images x 12 epochs in 24 h
# --smoke: tiny and never cut short by the clock (a busy CPU takes minutes for the two steps).
SMOKE = {"size": 128, "steps": 2, "images": 2, "predict_images": 1, "detections": 5, "max_seconds": math.inf}
CACHE_VARIABLES = ("TORCH_HOME", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")


def add_arguments(parser) -> None:
    parser.add_argument("--profile", default="real", help="the profile of the recipes (default: %(default)s)")
    parser.add_argument("--models", nargs="+", help="families to run (default: the profile's train.models)")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per family")
    parser.add_argument("--timed-from", type=int, default=20, help="steps before images/s is timed (warm-up)")
    parser.add_argument("--max-seconds", type=float, default=100, help="training time per family at most")
    parser.add_argument("--size", type=int, default=1024, help="longest side of the synthetic scenes")
    parser.add_argument("--images", type=int, default=48, help="synthetic training scenes")
    parser.add_argument("--predict-images", type=int, default=10)
    parser.add_argument("--detections", type=int, default=100, help="detections per image in predict")
    parser.add_argument("--smoke", action="store_true", help="CPU run of tiny sizes and few steps (tests)")
    parser.add_argument("--planted-starts", action="store_true",
                        help="random checkpoints as the configs' pretrained starts, in a temporary cache (no network)")


def scenes(count: int, size: int, seed: int, ontology) -> list:
    """`count` synthetic scenes (3:4, longest side `size`) as the cache reader's samples."""
    labels, samples = Labels(ontology), []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        image, visible = render(rng, size, size * 3 // 4, labels, min_area=16)
        masks = np.zeros((len(visible), *image.shape[:2]), np.uint8)
        for mask, instance in zip(masks, visible):
            mask[instance.full_mask(*image.shape[:2])] = 1
        samples.append(SimpleNamespace(image=image, masks=masks, class_ids=np.array([v.class_id for v in visible]),
                                       attributes=[v.attributes for v in visible]))
    return samples


def smoke_config(config, size: int, planted: bool):
    """`config` at `size` px, so that the real configs run on the CPU in seconds; unless its start was
    planted, without it (a published checkpoint the CPU test machine may not hold), its frozen norms kept."""
    config = config if planted else portable(config)
    if hasattr(config, "min_size"):
        return dataclasses.replace(config, min_size=size, max_size=size)
    return dataclasses.replace(config, image_size=max(size, 256))  # a fixed square: P7 of 2 x 2 px for batch norm


def check_config(train, steps: int, smoke: bool):
    """The recipe as the check runs it: warm-up within the steps; the CPU smoke run: batch 1, no workers, no AMP."""
    train = dataclasses.replace(train, warmup_steps=min(train.warmup_steps, steps // 5))
    if smoke:
        train = dataclasses.replace(train, batch_size=1, accumulate=1, workers=0, amp=False, sync_bn=False)
    return train


class Epochs:
    """`epochs` passes over a `TrainDataset` as one dataset: item p is image p % n augmented as in
    epoch p // n, so one DataLoader, its workers started once, serves the whole check."""
    def __init__(self, dataset, epochs: int):
        self.dataset, self.epochs = dataset, epochs

    def __len__(self) -> int:
        return len(self.dataset) * self.epochs

    def __getitem__(self, position: int):
        self.dataset.epoch = position // len(self.dataset)  # this worker's copy
        return self.dataset[position % len(self.dataset)]


def batches(dataset, cfg, steps: int, device):
    """Groups of `accumulate` micro-batches for `steps` optimizer steps, in a random order of the epochs."""
    images = steps * cfg.batch_size * cfg.accumulate
    epochs = Epochs(dataset, -(-images // len(dataset)))
    loader = torch.utils.data.DataLoader(
        epochs, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate, num_workers=cfg.workers,
        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(cfg.seed))
    return micro_batch_groups(loader, cfg.accumulate)


def synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_family(entry, config, samples, ontology, args, device) -> tuple[dict, object]:
    """Train one family for `args.steps` steps (or `--max-seconds`); its row and the trained model."""
    cfg = check_config(entry.train, args.steps, args.smoke)
    torch.manual_seed(cfg.seed)
    model = create_model(config)
    dataset = TrainDataset(samples, range(len(samples)), ontology, training_augment(cfg, config.crop_side), cfg.seed)
    run = engine.start(model, cfg, "gpu check", 0, 1, device, args.steps)
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses, timed_from = [], min(args.timed_from, args.steps - 1)
    start = begin = time.perf_counter()
    for group in batches(dataset, cfg, args.steps, device):
        if run.step == timed_from:
            synchronize(device)
            start = time.perf_counter()
        losses.append(sum(engine.train_step(run, group).values()).item())
        if run.step >= args.steps or time.perf_counter() - begin > args.max_seconds:
            break
    synchronize(device)
    seconds = time.perf_counter() - start
    timed_steps = run.step - timed_from
    images = timed_steps * cfg.batch_size * cfg.accumulate
    ends = max(1, min(10, len(losses) // 4))  # mean of the first and last few steps: one step is noisy
    row = {
        "config": str(entry.config), "crop_side": dataset.augment.image_size, "steps": run.step,
        "batch_size": cfg.batch_size, "accumulate": cfg.accumulate, "lr": cfg.scaled_lr(1),
        "amp": cfg.amp, "amp_dtype": cfg.amp_dtype, "skipped_steps": run.skipped,
        "train_images_per_second": round(images / seconds, 3) if timed_steps > 0 else None,
        "loss_start": round(float(np.mean(losses[:ends])), 4), "loss_end": round(float(np.mean(losses[-ends:])), 4),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if device.type == "cuda" else None,
    }
    return row, model


def predict_seconds(model, config, samples, ontology, device, detections: int) -> tuple[float, float | None]:
    """Seconds per image of `predict` on the trained weights, forced to `detections` per image, and its
    peak GPU memory (GiB; None on the CPU)."""
    forced = forced_detections(config, detections)
    trained = create_model(forced)
    trained.load_state_dict(model.state_dict())
    net = Stretched(trained.eval())
    reader = SampleReader([s.image for s in samples], max(samples[0].image.shape[:2]))
    if device.type == "cuda":  # kernels chosen, memory pooled: image 0 warms up (a CPU run skips it)
        predict(net, reader, [0], ontology, forced.attribute_threshold, device)
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    predict(net, reader, list(range(1, len(samples))), ontology, forced.attribute_threshold, device)
    synchronize(device)
    peak = round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None
    return (time.perf_counter() - start) / (len(samples) - 1), peak


def run(args, settings) -> dict:
    if not args.planted_starts:
        return measure(args, settings)
    with tempfile.TemporaryDirectory(prefix="planted-") as folder, library_caches(Path(folder)):
        return measure(args, settings)


@contextlib.contextmanager
def library_caches(folder: Path):
    """TORCH_HOME and HF_HOME in `folder` while the block runs: torch hub and the Hugging Face cache read
    them at each look-up, so the starts planted meanwhile go there and are found there."""
    saved = {name: os.environ.get(name) for name in CACHE_VARIABLES}
    os.environ.update(TORCH_HOME=str(folder / "torch"), HF_HOME=str(folder / "hf"))
    for name in CACHE_VARIABLES[2:]:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.update({name: value})


def measure(args, settings) -> dict:
    if args.smoke:
        vars(args).update(SMOKE)
        args.timed_from = 1
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    profile = load_settings(settings.origins.default, args.profile)  # the recipes, whatever the command's profile
    ontology = ontology_lib.load()
    samples = scenes(args.images, args.size, 0, ontology)
    to_predict = scenes(args.predict_images + 1, args.size, 1, ontology)
    rows = {}
    models = args.models or list(profile.train.models)
    for name in models:
        entry = profile.model(name)
        config = load_config(entry.config)
        if args.planted_starts and config.init is not None and named_start(config.init) is not None:
            plant(config.init)
        if args.smoke:
            config = smoke_config(config, args.size, args.planted_starts)
        rows[name], model = train_family(entry, config, samples, ontology, args, device)
        seconds, peak = predict_seconds(model, config, to_predict, ontology, device, args.detections)
        rows[name] |= {"predict_seconds_per_image": round(seconds, 4), "predict_peak_gpu_memory_gib": peak}
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    goal_model = models[0]
    speed = rows[goal_model].get("train_images_per_second")
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "smoke": args.smoke, "profile": args.profile, "planted_starts": args.planted_starts, "scene_size": args.size,
        "models": rows,
        "goal": {"model": goal_model, "train_images_per_second_at_least": GOAL_IMAGES_PER_SECOND,
                 "measured": speed,
                 # the goal is a GPU's: a CPU run says nothing about it
                 "met": None if device.type != "cuda" or speed is None else speed >= GOAL_IMAGES_PER_SECOND},
    }

"""Inference (and training) speed and size of each family's full-size configuration on this machine.

Random weights; every model is made to keep exactly `--detections` detections per image (no
score threshold, no class NMS), so mask pasting and encoding cost the same for every family.
Seconds per image cover the forward pass and turning its output into submission rows.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.data import ontology as ontology_lib
from pipeline.inference.rows import rows_for_image
from pipeline.models.config import portable
from pipeline.models.factory import count_parameters, create_model, load_config
from pipeline.training.data import image_to_tensor


# The real profile's configurations, one row each named by its file; the first sorted is the reference
# of the ratios (Attribute-Mask R-CNN R50).
REAL_CONFIGS = Path("configs/real")


def default_configs() -> list[tuple[str, Path]]:
    """(row name, config file) of every full-size configuration."""
    return [(path.stem, path) for path in sorted(REAL_CONFIGS.glob("*.yaml"))]


def add_arguments(parser) -> None:
    parser.add_argument("--image-size", type=int, default=512, help="longest image side (default: %(default)s)")
    parser.add_argument("--images", type=int, default=5, help="timed images per model (default: %(default)s)")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps, batch 2 (0: skip)")
    parser.add_argument("--detections", type=int, default=100)
    parser.add_argument("--models", nargs="+", help="row names to run (default: all)")


def forced_detections(config, detections: int):
    """The config changed so that it always returns `detections` detections."""
    changes = {"score_threshold": 0.0, "detections_per_image": detections}
    if hasattr(config, "nms_threshold"):
        changes["nms_threshold"] = 1.0
    return dataclasses.replace(config, **changes)


def at_size(config, size: int):
    """The config working on images of longest side `size`: families that resize internally
    (min_size / max_size) keep that size; EfficientDet keeps its own square (d0 512, d1 640, d2
    768), the resolution its compound scaling defines."""
    if hasattr(config, "min_size"):
        return dataclasses.replace(config, min_size=size, max_size=size)
    return config


def chosen_configs(args):
    """(name, config) of each full-size config `--models` picks, at `--image-size` with `--detections`
    forced; random weights, so no `init` file is read."""
    for name, path in default_configs():
        if not args.models or name in args.models:
            config = portable(load_config(path))
            yield name, at_size(forced_detections(config, args.detections), args.image_size)


def sample_image(size: int, seed: int = 0) -> np.ndarray:
    """A smooth, photo-like (H, W, 3) uint8 image with a 3:4 aspect ratio."""
    rng = np.random.default_rng(seed)
    height, width = size, size * 3 // 4
    yy, xx = np.mgrid[:height, :width] / size
    channels = [np.sin(xx * rng.uniform(2, 9) + rng.uniform(0, 6)) * np.cos(yy * rng.uniform(2, 9)) for _ in range(3)]
    return ((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8)


def stretched(masks: np.ndarray) -> np.ndarray:
    """Each soft mask min-max scaled to 0..1: random weights can leave a family's masks all below
    0.5, and empty masks skip pasting and encoding, which would flatter that family."""
    low = masks.min(axis=(-2, -1), keepdims=True)
    high = masks.max(axis=(-2, -1), keepdims=True)
    return (masks - low) / np.maximum(high - low, 1e-6)


def time_inference(model, images, ontology, threshold: float) -> tuple[float, int]:
    model.eval()
    with torch.inference_mode():
        model([image_to_tensor(images[0])])  # warm-up: first calls allocate and pick kernels
        start = time.perf_counter()
        for image in images:
            output = {k: v.float().numpy() for k, v in model([image_to_tensor(image)])[0].items()}
            output["masks"] = stretched(output["masks"])
            rows = rows_for_image("x", output, image.shape[:2], ontology, threshold)
        seconds = (time.perf_counter() - start) / len(images)
    return seconds, len(rows)


def time_training(model, image_size: int, steps: int, ontology) -> float:
    """Training images per second, batch 2 of random crops with a few instances each."""
    rng = np.random.default_rng(0)

    def target():
        masks = np.zeros((4, image_size, image_size), np.uint8)
        boxes = []
        for m in masks:
            y, x = rng.integers(0, image_size // 2, 2)
            h, w = rng.integers(image_size // 8, image_size // 2, 2)
            m[y : y + h, x : x + w] = 1
            boxes.append([x, y, x + w, y + h])
        return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor([0, 6, 23, 31]),
                "masks": torch.from_numpy(masks), "attributes": torch.zeros(4, ontology.num_attributes),
                "has_attributes": torch.tensor([True, False, False, True])}

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = [([torch.rand(3, image_size, image_size) for _ in range(2)], [target(), target()])
               for _ in range(steps + 1)]
    for i, (images, targets) in enumerate(batches):
        if i == 1:
            start = time.perf_counter()  # the first step is warm-up
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return 2 * steps / (time.perf_counter() - start)


def run(args, settings) -> dict:
    labels = ontology_lib.load()
    images = [sample_image(args.image_size, seed) for seed in range(args.images)]
    rows = {}
    for name, config in chosen_configs(args):
        torch.manual_seed(0)
        model = create_model(config)
        seconds, detections = time_inference(model, images, labels, config.attribute_threshold)
        row = {"seconds_per_image": round(seconds, 4), "params_m": round(count_parameters(model) / 1e6, 3),
               "detections_per_image": detections}
        if args.train_steps:
            row["train_images_per_second"] = round(time_training(model, args.image_size, args.train_steps, labels), 3)
        rows[name] = row
    result = {"image_size": args.image_size, "device": "cpu", "threads": torch.get_num_threads(), "models": rows}
    reference = default_configs()[0][0]
    if reference in rows:  # speed goals are ratios to the R50 Mask R-CNN, measured in this same run
        result[f"vs_{reference}"] = {
            name: {"speedup": round(rows[reference]["seconds_per_image"] / row["seconds_per_image"], 2),
                   "params_ratio": round(row["params_m"] / rows[reference]["params_m"], 3)}
            for name, row in rows.items() if name != reference
        }
    return result

"""`python -m pipeline bench predict`: seconds per image of the `predict` stage, per family.

Runs `pipeline.inference.predict.predict` itself (batches of `--batch-size`, float16 autocast and
masks pasted on the GPU when CUDA is present, on the CPU otherwise) on photo-like images of longest
side `--image-size` (what the cache holds), masks pasted back at `--orig-size` (Kaggle's photos are
larger than the cache). Random weights; each model keeps exactly `--detections` detections and its
masks are stretched and laid over a bump so that none is empty (`Stretched`). The JSON gives seconds
per image and, from them, hours per fold model for `--test-images` test images (no TTA).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from pipeline.benchmarks.inference import chosen_configs, sample_image
from pipeline.data import ontology as ontology_lib
from pipeline.inference.predict import predict
from pipeline.models.factory import create_model


class Stretched:
    """A model whose soft masks are min-max scaled per detection and laid over a Gaussian bump at
    a random place (an eighth of the image wide), so that pasting costs what a trained model's
    masks cost: random weights can leave masks flat or under 0.5, which would skip the paste."""
    def __init__(self, model):
        self.model = model
        self.generator = None

    def to(self, device):
        self.model.to(device)
        self.generator = torch.Generator(device).manual_seed(0)
        return self

    def __call__(self, images):
        outputs = self.model(images)
        for output in outputs:
            masks = output["masks"].float()
            low = masks.amin(dim=(-2, -1), keepdim=True)
            high = masks.amax(dim=(-2, -1), keepdim=True)
            height, width = masks.shape[-2:]
            centre = torch.rand(masks.shape[0], 2, 1, 1, generator=self.generator, device=masks.device)
            y = torch.arange(height, device=masks.device).view(1, -1, 1) / height
            x = torch.arange(width, device=masks.device).view(1, 1, -1) / width
            bump = torch.exp(-((y - centre[:, 0]) ** 2 + (x - centre[:, 1]) ** 2) * 32)[:, None]
            output["masks"] = torch.maximum((masks - low) / (high - low).clamp_min(1e-6), bump)
        return outputs


class SampleReader:
    """The cache reader's interface over in-memory images."""
    def __init__(self, images: list[np.ndarray], orig_size: int):
        self.images = images
        self.image_ids = [f"image{i:04d}" for i in range(len(images))]
        self.orig_sizes = np.array([(orig_size, orig_size * 3 // 4)] * len(images))

    def image(self, index: int) -> np.ndarray:
        return self.images[index]


def add_arguments(parser) -> None:
    parser.add_argument("--image-size", type=int, default=512, help="longest side the model sees (cache.max_size)")
    parser.add_argument("--orig-size", type=int, default=1024, help="longest side masks are pasted at")
    parser.add_argument("--images", type=int, default=4, help="timed images per family")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--detections", type=int, default=100)
    parser.add_argument("--test-images", type=int, default=3200)
    parser.add_argument("--models", nargs="+", help="row names of `bench inference` to run (default: all)")


def run(args, settings) -> dict:
    labels = ontology_lib.load()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    reader = SampleReader([sample_image(args.image_size, seed) for seed in range(args.images + 1)], args.orig_size)
    rows = {}
    for name, config in chosen_configs(args):
        torch.manual_seed(0)
        model = Stretched(create_model(config).eval())
        predict(model, reader, [0], labels, config.attribute_threshold, device)  # warm-up
        start = time.perf_counter()
        frame = predict(model, reader, list(range(1, args.images + 1)), labels, config.attribute_threshold, device,
                        batch_size=args.batch_size)
        seconds = (time.perf_counter() - start) / args.images
        rows[name] = {"seconds_per_image": round(seconds, 4), "detections_per_image": len(frame) / args.images,
                      "hours_per_fold_model": round(seconds * args.test_images / 3600, 3)}
    return {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "threads": torch.get_num_threads(), "image_size": args.image_size, "orig_size": args.orig_size,
            "batch_size": args.batch_size, "test_images": args.test_images, "models": rows}

"""FLOPs and parameters of each family's default configuration, like Table 3 of the FashionFormer paper.

FLOPs of one forward pass in eval mode (random weights, exactly `--detections` detections, as the
inference benchmark), counted by `torch.utils.flop_counter.FlopCounterMode`: convolutions and
matrix products, the usual convention (element-wise ops, resampling and RoIAlign are not counted).
GFLOPs here are 1e9 such operations, a multiply-add counting two. One 3:4 image per size.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from pipeline.benchmarks.inference import at_size, default_configs, forced_detections, sample_image
from pipeline.models.config import portable
from pipeline.models.factory import count_parameters, create_model, load_config
from pipeline.training.data import image_to_tensor


def add_arguments(parser) -> None:
    parser.add_argument("--image-sizes", type=int, nargs="+", default=[512, 1020],
                        help="longest image sides (default: %(default)s)")
    parser.add_argument("--detections", type=int, default=100)
    parser.add_argument("--models", nargs="+", help="row names of the inference benchmark (default: all)")
    parser.add_argument("--configs", nargs="+", help="model config files to count instead, rows named by file")


def count_flops(model, image) -> int:
    counter = FlopCounterMode(display=False)
    # With autograd on: the counter's module tracker hooks the gradients of module inputs that
    # require them, and fails on parameters passed as inputs (FashionFormer's queries) under
    # no_grad or inference_mode. Only the forward pass is counted.
    with counter:
        model([image])
    return counter.get_total_flops()


def run(args, settings) -> dict:
    rows = {}
    for name, path in [(Path(p).stem, p) for p in args.configs] if args.configs else default_configs():
        if args.models and name not in args.models:
            continue
        config = forced_detections(portable(load_config(path)), args.detections)
        torch.manual_seed(0)
        row = {}
        for size in args.image_sizes:
            model = create_model(at_size(config, size)).eval()
            row["params_m"] = round(count_parameters(model) / 1e6, 3)
            row[f"gflops_{size}"] = round(count_flops(model, image_to_tensor(sample_image(size))) / 1e9, 2)
        rows[name] = row
    return {"image_sizes": args.image_sizes, "models": rows}

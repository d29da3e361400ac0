"""`python -m pipeline bench <name>`: run one benchmark, print its JSON result on stdout.

Only the chosen benchmark's module is imported (as `pipeline.cli` does for commands): the
benchmarks import torch, effdet or pycocotools, which take seconds to load.
"""
from __future__ import annotations

import argparse
import importlib
import json

# (name, module with add_arguments(parser) and run(options, settings) -> dict, one-line help)
BENCHMARKS = (
    ("rle", "pipeline.benchmarks.rle", "RLE decode/encode against pycocotools and a naive loop."),
    ("cache", "pipeline.benchmarks.cache", "HDF5 cache reads against on-the-fly JPEG and RLE decoding; bytes against JPEG."),
    ("inference", "pipeline.benchmarks.inference",
     "Seconds per image, parameters and training images/s of each family on CPU."),
    ("flops", "pipeline.benchmarks.flops",
     "GFLOPs (torch's flop counter) and parameters of each family's default configuration."),
    ("processes", "pipeline.benchmarks.processes",
     "Training images/s of one process against train.processes DDP processes."),
    ("evaluate", "pipeline.benchmarks.evaluate",
     "The evaluator (from CSVs and from the official JSON files) against pycocotools and FPEval, val-sized."),
    ("fashionpedia-json", "pipeline.benchmarks.fashionpedia_json",
     "Seconds and peak memory of reading a Fashionpedia instances JSON (polygons) of a chosen size."),
    ("evaluate-df2", "pipeline.benchmarks.evaluate_df2",
     "evaluate-df2 against the official DeepFashion2 evaluation (pycocotools), side by side."),
    ("retrieval", "pipeline.benchmarks.retrieval",
     "retrieve's gallery ranking at DeepFashion2 validation's size (12,550 queries, 37,183 gallery items)."),
    ("predict", "pipeline.benchmarks.predict",
     "Seconds per image of the predict stage per family (batched; fp16 and GPU paste on CUDA)."),
    ("scale", "pipeline.benchmarks.scale",
     "Post-processing stages (gather .. validate) at growing R-fold copies of a dataset."),
    ("gpu", "pipeline.benchmarks.gpu",
     "Each family's real-data recipe trained a few hundred steps at 1024 px with AMP, then predict: images/s, "
     "peak memory, losses (--smoke: tiny, on the CPU)."),
    ("quality", "pipeline.benchmarks.quality",
     "Out-of-fold ap_iou, ap_iou_f1 and Kaggle score of each family and variant over N seeds: mean and deviation."),
    ("weights", "pipeline.benchmarks.weights",
     "Ensemble weights chosen on the other folds and scored on each held-out fold, against every family."),
)


def add_arguments(parser) -> None:
    names = [name for name, _, _ in BENCHMARKS]
    parser.add_argument("benchmark", choices=names, metavar="NAME", help=", ".join(names))
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "benchmarks:\n" + "\n".join(f"  {name}: {help_text}" for name, _, help_text in BENCHMARKS)
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the benchmark's own options (NAME --help)")


def benchmark_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    """The chosen benchmark's parser and module; only this benchmark's module is imported."""
    module_path, help_text = {n: (path, text) for n, path, text in BENCHMARKS}[name]
    module = importlib.import_module(module_path)
    parser = argparse.ArgumentParser(prog=f"python -m pipeline bench {name}", description=help_text)
    module.add_arguments(parser)
    return parser, module


def run(settings, args) -> int:
    parser, module = benchmark_parser(args.benchmark)
    options = parser.parse_args(args.arguments)
    print(json.dumps(module.run(options, settings), indent=2))
    return 0

"""`python -m pipeline bench <name>`: run one benchmark, print its JSON result on stdout."""
from __future__ import annotations

import json

from pipeline.benchmarks import cache, evaluate, evaluate_df2, flops, inference, predict, processes, rle, scale

# (name, module with add_arguments(parser) and run(args) -> dict, one-line help)
BENCHMARKS = (
    ("rle", rle, "RLE decode/encode against pycocotools and a naive loop."),
    ("cache", cache, "HDF5 cache reads against on-the-fly JPEG and RLE decoding; bytes against JPEG."),
    ("inference", inference, "Seconds per image, parameters and training images/s of each family on CPU."),
    ("flops", flops, "GFLOPs (torch's flop counter) and parameters of each family's default configuration."),
    ("processes", processes, "Training images/s of one process against train.processes DDP processes."),
    ("evaluate", evaluate, "The evaluator against pycocotools and FPEval on a Fashionpedia-val-sized set."),
    ("evaluate-df2", evaluate_df2, "evaluate-df2 against the official DeepFashion2 evaluation (pycocotools), side by side."),
    ("predict", predict, "Seconds per image of the predict stage per family (batched; fp16 and GPU paste on CUDA)."),
    ("scale", scale, "Post-processing stages (gather .. validate) at growing R-fold copies of a dataset."),
)


def add_arguments(parser) -> None:
    benchmarks = parser.add_subparsers(dest="benchmark", required=True, metavar="NAME")
    for name, module, help_text in BENCHMARKS:
        sub = benchmarks.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(benchmark_run=module.run)


def run(args) -> int:
    print(json.dumps(args.benchmark_run(args), indent=2))
    return 0

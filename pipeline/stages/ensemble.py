"""`python -m pipeline ensemble --split oof|test`: one predictions file from several models' files.

Inputs (params `ensemble.models`, default `train.models`; per-model `weights`, default 1):
- oof: `predictions/oof/<model>.csv`, weight w;
- test: `predictions/test/<model>/fold<K>.csv` for every K in `train.folds`, weight w / folds, so
  a family's fold models are fused like different models and the family weighs w in all;
- test with `--fold all` (the papers' protocol): `predictions/all/<model>.csv`, the models trained on
  every image, weight w.
`--inputs A.csv B.csv [--weights 1 2]` replaces that list (notebooks). Writes
`predictions/<split>/ensemble.csv`, with `--fold all` `predictions/all/ensemble.csv` (or `--out`).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.ensembling.config import METHODS
from pipeline.layout import ALL_FOLDS as ALL
from pipeline.stages.evaluate import add_work_arguments


def add_arguments(parser) -> None:
    parser.add_argument("--split", choices=("oof", "test"), default="oof", help="default: %(default)s")
    parser.add_argument("--fold", choices=(ALL,), help="all: the models trained on every image (test split only)")
    parser.add_argument("--out", help="predictions CSV to write (default: predictions/<split>/ensemble.csv; "
                                      "--fold all: predictions/all/ensemble.csv)")
    parser.add_argument("--inputs", nargs="+", help="prediction CSVs to ensemble instead of params ensemble.models")
    parser.add_argument("--weights", nargs="+", type=float, help="one weight per --inputs file (default: 1 each)")
    parser.add_argument("--method", dest="ensemble.method", choices=METHODS, help="default: params ensemble.method")
    parser.add_argument("--iou-threshold", dest="ensemble.iou_threshold", type=float,
                        help="mask IoU that makes two detections one object (default: params)")
    parser.add_argument("--data", "--root", dest="data.root", help="dataset root (default: params data.root)")
    add_work_arguments(parser, "ensemble")


def input_files(settings, args) -> list[tuple[Path, float]]:
    """(path, weight) of every file to ensemble."""
    from pipeline import layout
    from pipeline.errors import InputError

    if args.inputs:
        weights = args.weights or [1.0] * len(args.inputs)
        if len(weights) != len(args.inputs):
            raise InputError(f"--weights gives {len(weights)} weights for {len(args.inputs)} --inputs")
        return [(Path(p), w) for p, w in zip(args.inputs, weights)]
    if args.weights:
        raise InputError("--weights needs --inputs")
    models = list(settings.ensemble.models or settings.train.models)
    if not models:
        raise settings.error("ensemble: no models (set ensemble.models or train.models)", "ensemble", "models")
    if args.fold == ALL:
        if args.split != "test":
            raise InputError("--fold all: the models trained on every image predict the test split only")
        return [(layout.all_predictions(m), settings.ensemble.weight(m)) for m in models]
    if args.split == "oof":
        return [(layout.oof_predictions(m), settings.ensemble.weight(m)) for m in models]
    folds = settings.trained_folds()
    return [(layout.fold_predictions("test", m, k), settings.ensemble.weight(m) / len(folds))
            for m in models for k in folds]


def run(settings, args) -> int:
    from pipeline import layout
    from pipeline.data import ontology
    from pipeline.ensembling.ensemble import ensemble_files
    from pipeline.ensembling.inputs import image_folder

    default = layout.all_predictions(layout.ENSEMBLE) if args.fold == ALL else layout.ensemble_predictions(args.split)
    out = Path(args.out or default)
    print(ensemble_files(input_files(settings, args), image_folder(settings.data_root, args.split, settings.data.layout),
                         ontology.load_for_dataset(settings.data_root), settings.ensemble, out,
                         progress=not args.no_progress))
    return 0

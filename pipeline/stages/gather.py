"""`python -m pipeline gather --model NAME`: all folds' out-of-fold predictions in one file.

Reads `predictions/oof/<NAME>/fold<K>.csv` for every fold K the pipeline trains (params
`train.folds`: all of 0..folds.k-1 for a full CV, one fold for a quick run or a queued per-fold
experiment) and writes `predictions/oof/<NAME>.csv`.
"""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True)
    parser.add_argument("--folds", dest="train.folds", type=int, nargs="+",
                        help="folds to gather (default: params train.folds)")


def run(settings, args) -> int:
    from pipeline import layout
    from pipeline.inference.gather import gather

    folds = settings.trained_folds()
    out = layout.oof_predictions(args.model)
    rows = gather([layout.fold_predictions("oof", args.model, fold) for fold in folds], out,
                  progress=not args.no_progress)
    print(f"{args.model}: {rows} out-of-fold predictions from folds {folds} -> {out}")
    return 0

"""`python -m pipeline gather --model NAME`: all folds' out-of-fold predictions in one file.

Reads `predictions/oof/<NAME>/fold<K>.csv` for every fold K the pipeline trains (params
`train.folds`: all of 0..folds.k-1 for a full CV, one fold for a quick run or a queued per-fold
experiment) and writes `predictions/oof/<NAME>.csv`; a missing file is an error, never a silently
smaller file. The fold files are sorted by ImageId (as `predict` writes them) and merged image by
image into a file sorted the same way, streamed: memory holds one image's rows per fold.
"""
from __future__ import annotations

from pipeline import io, layout, params
from pipeline.data.sorted_csv import aligned_image_groups
from pipeline.errors import InputError
from pipeline.data.prediction_rows import COLUMNS

def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True)
    parser.add_argument("--folds", type=int, nargs="+", help="folds to gather (default: params train.folds)")


def trained_folds(params_path) -> list[int]:
    """params `train.folds`, checked against `folds.k`."""
    config = params.load(params_path)
    k = int((config.get("folds") or {}).get("k", 5))
    folds = (config.get("train") or {}).get("folds", list(range(k)))
    if not folds or any(isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < k for f in folds):
        raise InputError(f"train.folds must be fold numbers within 0..{k - 1} (folds.k), got {folds!r}", params_path)
    return list(folds)


def run(args) -> int:
    folds = args.folds or trained_folds(args.params)
    paths = [layout.fold_predictions("oof", args.model, fold) for fold in folds]
    for path in paths:
        if not path.exists():
            raise InputError("prediction file not found (run predict for this fold first)", path)
    out = layout.oof_predictions(args.model)
    rows = 0
    with io.csv_rows(out, COLUMNS) as writer:
        for _, frames in aligned_image_groups(paths, COLUMNS):
            for frame in frames:
                if frame is not None:
                    writer.writerows(frame[list(COLUMNS)].itertuples(index=False))
                    rows += len(frame)
    print(f"{args.model}: {rows} out-of-fold predictions from folds {folds} -> {out}")
    return 0

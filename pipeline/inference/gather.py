"""`python -m pipeline gather --model NAME`: all folds' out-of-fold predictions in one file.

Reads `predictions/oof/<NAME>/fold<K>.csv` for every fold K the pipeline trains (params
`train.folds`: all of 0..folds.k-1 for a full CV, one fold for a quick run or a queued per-fold
experiment) and writes `predictions/oof/<NAME>.csv`; a missing file is an error, never a silently
smaller file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import io, params
from pipeline.errors import InputError
from pipeline.inference.postprocess import COLUMNS

DEFAULTS = {"dir": "predictions/oof"}


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True)
    parser.add_argument("--folds", type=int, nargs="+", help="folds to gather (default: params train.folds)")


def read_predictions(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputError("prediction file not found (run predict for this fold first)", path)
    return pd.read_csv(path, dtype={"ImageId": str, "EncodedPixels": str, "AttributesIds": str},
                       keep_default_na=False)


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
    directory = Path(DEFAULTS["dir"])
    frames = [read_predictions(directory / args.model / f"fold{fold}.csv") for fold in folds]
    merged = pd.concat(frames, ignore_index=True)[list(COLUMNS)]
    out = directory / f"{args.model}.csv"
    io.write_csv(out, merged)
    print(f"{args.model}: {len(merged)} out-of-fold predictions from folds {folds} -> {out}")
    return 0

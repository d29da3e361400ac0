"""`python -m pipeline gather --model NAME`: all folds' out-of-fold predictions in one file.

Reads `predictions/oof/<NAME>/fold<K>.csv` for K in 0..folds.k-1 and writes
`predictions/oof/<NAME>.csv`; a missing fold is an error, never a silently smaller file.
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
    parser.add_argument("--k", type=int, help="number of folds (default: params folds.k)")


def read_predictions(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputError("prediction file not found (run predict for this fold first)", path)
    return pd.read_csv(path, dtype={"ImageId": str, "EncodedPixels": str, "AttributesIds": str},
                       keep_default_na=False)


def run(args) -> int:
    k = args.k or int((params.load(args.params).get("folds") or {}).get("k", 5))
    directory = Path(DEFAULTS["dir"])
    frames = [read_predictions(directory / args.model / f"fold{fold}.csv") for fold in range(k)]
    merged = pd.concat(frames, ignore_index=True)[list(COLUMNS)]
    out = directory / f"{args.model}.csv"
    io.write_csv(out, merged)
    print(f"{args.model}: {len(merged)} out-of-fold predictions from {k} folds -> {out}")
    return 0

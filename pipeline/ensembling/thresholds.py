"""Tuned thresholds: the file `tune` writes and `apply_thresholds`, which the submit stage calls.

`tuning/thresholds.json`:
    {"metric": "kaggle", "score": 0.12,              # global score cut-off
     "class_scores": {"31": 0.3, ...},               # ClassId -> cut-off where tuned apart
     "attribute_default": 0.5,
     "attributes": {"115": 0.35, ...}}               # attribute id -> probability threshold
A detection is kept when its score reaches its class's cut-off (else the global one); its
AttributesIds become the attributes whose AttributeScores probability reaches their threshold. A row
without AttributeScores keeps its AttributesIds (as in ensembling, they count as probability 1).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.errors import InputError
from pipeline.data.prediction_rows import ATTRIBUTE_SCORES_COLUMN as SCORES_COLUMN
from pipeline.data.prediction_rows import parse_attribute_scores


@dataclass
class Thresholds:
    metric: str = "kaggle"
    score: float = 0.0
    class_scores: dict[int, float] = field(default_factory=dict)
    attribute_default: float = 0.5
    attributes: dict[int, float] = field(default_factory=dict)

    def class_cutoffs(self, num_classes: int) -> np.ndarray:
        cutoffs = np.full(num_classes, self.score)
        for class_id, cutoff in self.class_scores.items():
            cutoffs[class_id] = cutoff
        return cutoffs

    def attribute_cutoffs(self, attribute_ids: np.ndarray) -> np.ndarray:
        return np.array([self.attributes.get(int(a), self.attribute_default) for a in attribute_ids])

    def to_json(self) -> dict:
        return {"metric": self.metric, "score": self.score,
                "class_scores": {str(k): v for k, v in sorted(self.class_scores.items())},
                "attribute_default": self.attribute_default,
                "attributes": {str(k): v for k, v in sorted(self.attributes.items())}}


def save(path: str | Path, thresholds: Thresholds) -> None:
    io.write_json(path, thresholds.to_json())


def load(path: str | Path) -> Thresholds:
    try:
        raw = json.loads(Path(path).read_text())
        return Thresholds(str(raw["metric"]), float(raw["score"]),
                          {int(k): float(v) for k, v in raw["class_scores"].items()},
                          float(raw["attribute_default"]),
                          {int(k): float(v) for k, v in raw["attributes"].items()})
    except FileNotFoundError:
        raise InputError("thresholds file not found (run python -m pipeline tune)", path) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(f"not a thresholds file ({error})", path) from None


def apply_thresholds(frame: pd.DataFrame, thresholds: Thresholds, source: str = "<predictions>",
                     blank_dropped: bool = False) -> pd.DataFrame:
    """Predictions (CSV columns, Score required) under their cut-offs dropped, AttributesIds re-derived.

    Blank rows (an image listed without predictions) are kept as they are. `blank_dropped`: a dropped
    detection becomes such a blank row instead, so later messages keep the file's line numbers.
    """
    strings = {c: frame[c].astype(str).where(frame[c].notna(), "") for c in ("ClassId", "Score")}
    blank = (strings["ClassId"].str.strip() == "").to_numpy()
    score = pd.to_numeric(strings["Score"], errors="coerce").to_numpy()
    class_id = pd.to_numeric(strings["ClassId"], errors="coerce").to_numpy()
    # Lines of the source file: a frame read in parts keeps the file's row numbers as its index.
    lines = frame.index.to_numpy() + 2 if frame.index.dtype.kind in "iu" else np.arange(len(frame)) + 2
    bad = np.flatnonzero(~blank & ~(np.isfinite(score) & np.isfinite(class_id)))
    if bad.size:
        raise InputError("Score and ClassId must be numbers", source, int(lines[bad[0]]))
    cutoff = np.array([thresholds.class_scores.get(int(c), thresholds.score) if not b else 0.0
                       for c, b in zip(class_id, blank)])
    kept = blank | (score >= cutoff)
    result = frame.copy()
    if SCORES_COLUMN in result.columns:
        result["AttributesIds"] = [_attribute_ids(text, ids, thresholds, source, line) if keep else ids
                                   for text, ids, keep, line in zip(result[SCORES_COLUMN], result["AttributesIds"],
                                                                    kept, lines)]
    if blank_dropped:
        result.loc[~kept, [c for c in result.columns if c != "ImageId"]] = ""
        return result
    return result[kept]


def _attribute_ids(text, ids, thresholds: Thresholds, source: str, line: int) -> str:
    try:
        scores = parse_attribute_scores("" if pd.isna(text) else str(text))
    except ValueError as error:
        raise InputError(str(error), source, int(line)) from None
    if not scores:
        return ids
    return ",".join(str(a) for a, p in sorted(scores.items())
                    if p >= thresholds.attributes.get(a, thresholds.attribute_default))

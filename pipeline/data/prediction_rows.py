"""The prediction file format: the submission's columns, `Score` and `AttributeScores`.

Prediction files carry, besides the submission's columns and `Score`, `AttributeScores`: the
attribute probabilities as space-separated `id:probability` pairs, every attribute at or above
`SCORE_FLOOR` (3 decimals). Ensembling averages them and tuning picks per-attribute thresholds from
them; `AttributesIds` is the model's own thresholded choice.
"""
from __future__ import annotations

import numpy as np

from pipeline.data.ontology import Ontology

ATTRIBUTE_SCORES_COLUMN = "AttributeScores"
COLUMNS = ("ImageId", "EncodedPixels", "ClassId", "AttributesIds", "Score", ATTRIBUTE_SCORES_COLUMN)
SCORE_FLOOR = 0.05  # attribute probabilities below this are not written (tuned thresholds start here)


def format_attribute_scores(vector: np.ndarray, ontology: Ontology) -> str:
    """`id:probability` pairs of one probability vector (ontology order), ids ascending."""
    ids = ontology.attribute_ids
    keep = np.flatnonzero(np.asarray(vector) >= SCORE_FLOOR)
    return " ".join(f"{int(ids[i])}:{float(vector[i]):.3f}" for i in keep)


def parse_attribute_scores(text: str) -> dict[int, float]:
    """{attribute id: probability} of an `AttributeScores` field; ValueError on a malformed one."""
    scores = {}
    for pair in str(text or "").split():
        key, sep, value = pair.partition(":")
        if not sep:
            raise ValueError(f"attribute score {pair!r} is not id:probability")
        probability = float(value)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"attribute probability {probability} of {key} outside 0..1")
        scores[int(key)] = probability
    return scores

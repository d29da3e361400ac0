"""Read predictions in Kaggle's submission layout plus an optional `Score` column.

Masks are sized by the ground truth's Height x Width of their image, so reading needs the ground
truth records. Every row is validated; an error names the source and the line (header = line 1).
A row whose EncodedPixels and ClassId are both empty only lists an image without predictions
(Kaggle's submissions need one row per test image) and is skipped.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from pipeline.data import rle
from pipeline.data.annotations import ImageRecord, parse_attributes, parse_class_id, read_csv_strict
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError
from pipeline.evaluation.instances import InstanceTable

PREDICTION_COLUMNS = ("ImageId", "EncodedPixels", "ClassId", "AttributesIds")
SCORE_COLUMN = "Score"


def read_predictions(path: str | Path, records: list[ImageRecord], ontology: Ontology) -> InstanceTable:
    """Validated predictions of a CSV file; `score` is None when the file has no Score column."""
    return predictions_table(read_csv_strict(path, PREDICTION_COLUMNS), records, ontology, str(path))


def predictions_table(
    frame: pd.DataFrame, records: list[ImageRecord], ontology: Ontology, source: str = "<predictions>"
) -> InstanceTable:
    """Validate a predictions frame (row i is reported as line i + 2, as if read from a CSV).

    In-memory frames may hold numbers; every cell is read through its string form, so a frame and
    the CSV written from it score the same.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", source, 1)
    has_score = SCORE_COLUMN in frame.columns
    image_index = {record.image_id: i for i, record in enumerate(records)}
    columns = [_strings(frame[c]) for c in PREDICTION_COLUMNS]
    scores_column = _strings(frame[SCORE_COLUMN]) if has_score else [""] * len(frame)
    image, class_id, attributes, runs, scores, lines = [], [], [], [], [], []
    for line, (image_id, encoded, class_text, attribute_text, score_text) in enumerate(
        zip(*columns, scores_column), 2
    ):
        try:
            image_id = image_id.strip()
            if not image_id:
                raise ValueError("empty ImageId")
            index = image_index.get(image_id)
            if index is None:
                raise ValueError(f"image {image_id} is not in the ground truth")
            if not encoded.strip() and not class_text.strip():
                continue
            record = records[index]
            runs.append(rle.parse(encoded, record.height, record.width))
            class_id.append(parse_class_id(class_text, ontology))
            attributes.append(parse_attributes(attribute_text, ontology))
            if has_score:
                scores.append(_parse_score(score_text))
        except ValueError as error:  # RLEError is a ValueError
            raise InputError(str(error), source, line) from None
        image.append(index)
        lines.append(line)
    return InstanceTable.build(image, class_id, attributes, runs, scores if has_score else None, lines)


def _strings(column: pd.Series) -> list[str]:
    return column.astype(str).where(column.notna(), "").tolist()


def _parse_score(value: str) -> float:
    try:
        score = float(value)
    except ValueError:
        raise ValueError(f"Score {value!r} is not a number") from None
    if not math.isfinite(score):
        raise ValueError(f"Score {value!r} is not a finite number")
    return score

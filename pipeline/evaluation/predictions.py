"""Read predictions in Kaggle's submission layout plus an optional `Score` column.

Masks are sized by the ground truth's Height x Width of their image, so reading needs the ground
truth records. Every row is validated; an error names the source and the line (header = line 1).
A row whose EncodedPixels and ClassId are both empty only lists an image without predictions
(Kaggle's submissions need one row per test image) and is skipped.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from pipeline.data import rle
from pipeline.data.annotations import ImageRecord, parse_attributes, parse_class_id, read_csv_strict
from pipeline.data.sorted_csv import header, image_groups
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError
from pipeline.evaluation.instances import InstanceTable

PREDICTION_COLUMNS = ("ImageId", "EncodedPixels", "ClassId", "AttributesIds")
SCORE_COLUMN = "Score"
CHUNK_IMAGES = 500  # images parsed at once by `chunked_tables`


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
    """The cells as strings, '' for missing ones; CSV cells read as strings pass as they are."""
    return [v if isinstance(v, str) else "" if pd.isna(v) else str(v) for v in column.tolist()]


def _parse_score(value: str) -> float:
    try:
        score = float(value)
    except ValueError:
        raise ValueError(f"Score {value!r} is not a number") from None
    if not math.isfinite(score):
        raise ValueError(f"Score {value!r} is not a finite number")
    return score


def chunked_tables(path: str | Path, records: list[ImageRecord], ontology: Ontology,
                   transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                   chunk_images: int = CHUNK_IMAGES) -> Iterator[tuple[np.ndarray, pd.DataFrame, InstanceTable]]:
    """Every ground-truth image with its predictions, `chunk_images` images at a time, from a file
    sorted by ImageId (`sorted_csv`): (indices of the chunk's records, its rows as read, their table).

    The table's `image` indexes the chunk's records, its `line` is the file's line. `transform`
    (e.g. tuned thresholds) is applied to the rows before they are parsed. Images come in ImageId
    order; images without predictions come too (their ground truth still counts).
    """
    columns = header(path, PREDICTION_COLUMNS)
    order = sorted(range(len(records)), key=lambda i: records[i].image_id)
    index_of = {record.image_id: i for i, record in enumerate(records)}
    images, frames, next_image = [], [], 0
    for image_id, frame in image_groups(path, PREDICTION_COLUMNS):
        index = index_of.get(image_id)
        if index is None:
            raise InputError(f"image {image_id} is not in the ground truth", path, int(frame.index[0]) + 2)
        while order[next_image] != index:  # ground-truth images without predictions
            images.append(order[next_image])
            next_image += 1
        images.append(index)
        frames.append(frame)
        next_image += 1
        if len(images) >= chunk_images:
            yield _chunk(images, frames, records, ontology, path, columns, transform)
            images, frames = [], []
    images += order[next_image:]
    if images:
        yield _chunk(images, frames, records, ontology, path, columns, transform)


def _chunk(images, frames, records, ontology, path, columns, transform):
    frame = pd.concat(frames) if frames else pd.DataFrame(columns=columns)
    if transform is not None:
        frame = transform(frame)
    return np.array(images, np.int64), frame, rows_table(frame, [records[i] for i in images], ontology, path)


def rows_table(frame: pd.DataFrame, records: list[ImageRecord], ontology: Ontology, path: str | Path) -> InstanceTable:
    """`predictions_table` of rows read from a file (index = line - 2): lines and messages name the
    file's lines."""
    lines = frame.index.to_numpy() + 2
    try:
        table = predictions_table(frame.reset_index(drop=True), records, ontology, str(path))
    except InputError as error:  # its line counts the rows given: point at the file's line
        raise InputError(error.message, path, int(lines[error.line - 2])) from None
    table.line = lines[table.line - 2]
    return table

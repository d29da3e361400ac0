"""Read predictions in Kaggle's submission layout plus an optional `Score` column.

Masks are sized by the ground truth's Height x Width of their image, so reading needs the ground
truth records. Every row is validated; an error names the source and the line (header = line 1).
A row whose EncodedPixels and ClassId are both empty only lists an image without predictions
(Kaggle's submissions need one row per test image) and is skipped.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from pipeline.data import rle
from pipeline.data.annotations import ImageRecord, parse_attributes, parse_class_id, read_csv_strict
from pipeline.data.sorted_csv import Span, header, image_groups, image_spans, joined, read_span
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError
from pipeline.scoring.instances import InstanceTable

PREDICTION_COLUMNS = ("ImageId", "EncodedPixels", "ClassId", "AttributesIds")
SCORE_COLUMN = "Score"
# Images read at once, one task for a worker (`scoring.streamed`): a few thousand images make enough
# chunks to keep 16 workers busy, and a chunk's own cost stays small beside its images'.
CHUNK_IMAGES = 100


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
                scores.append(parse_score(score_text))
        except ValueError as error:  # RLEError is a ValueError
            raise InputError(str(error), source, line) from None
        image.append(index)
        lines.append(line)
    return InstanceTable.build(image, class_id, attributes, runs, scores if has_score else None, lines)


def _strings(column: pd.Series) -> list[str]:
    """The cells as strings, '' for missing ones; CSV cells read as strings pass as they are."""
    return [v if isinstance(v, str) else "" if pd.isna(v) else str(v) for v in column.tolist()]


def parse_score(value: str) -> float:
    try:
        score = float(value)
    except ValueError:
        raise ValueError(f"Score {value!r} is not a number") from None
    if not math.isfinite(score):
        raise ValueError(f"Score {value!r} is not a finite number")
    return score


def chunked_tables(path: str | Path, ground_truth: Iterable[tuple[int, ImageRecord]], ontology: Ontology,
                   chunk_images: int | None = None) -> Iterator[tuple[np.ndarray, list[ImageRecord], pd.DataFrame, InstanceTable]]:
    """Every ground-truth image with its predictions, `chunk_images` images at a time
    (`chunked_frames`): (the chunk's ground-truth indices, its records, its rows as read, their
    table). The table's `image` indexes the chunk's records, its `line` is the file's line."""
    for images, records, rows in chunked_frames(path, ground_truth, chunk_images):
        frame = frame_of(rows)
        yield images, records, frame, rows_table(frame, records, ontology, path)


def chunked_frames(path: str | Path, ground_truth: Iterable[tuple[int, ImageRecord]],
                   chunk_images: int | None = None
                   ) -> Iterator[tuple[np.ndarray, list[ImageRecord], pd.DataFrame | Span]]:
    """Every ground-truth image with its prediction rows, `chunk_images` images at a time, from a
    file in any row order (`sorted_csv`): (the chunk's ground-truth indices, its records, its rows),
    the rows not yet validated (`rows_table` does that, in a worker process if need be) and, from a
    file simple enough, not yet parsed either: a `Span` that `frame_of` reads where it is used, so
    the process walking the file does not parse every row. `frame_of(rows)`: the rows as read,
    index = line - 2.

    `ground_truth`: (index, record) by ascending ImageId (`annotations.records_by_image_id`, or
    `in_image_id_order` of records in memory); the two are walked side by side, so neither is ever
    whole in memory. Images without predictions come too (their ground truth still counts).
    `chunk_images` None: `CHUNK_IMAGES`.
    """
    chunk_images = chunk_images or CHUNK_IMAGES
    columns = header(path, PREDICTION_COLUMNS)
    spans = image_spans(path, PREDICTION_COLUMNS)
    predictions = image_groups(path, PREDICTION_COLUMNS) if spans is None else spans
    pending = next(predictions, None)
    images, records, parts = [], [], []
    for index, record in ground_truth:
        if pending is not None and pending[0] < record.image_id:
            _not_in_ground_truth(pending, path)
        if pending is not None and pending[0] == record.image_id:
            parts.append(pending[1])
            pending = next(predictions, None)
        images.append(index)
        records.append(record)
        if len(images) >= chunk_images:
            yield _chunk(images, records, parts, columns)
            images, records, parts = [], [], []
    if pending is not None:
        _not_in_ground_truth(pending, path)
    if images:
        yield _chunk(images, records, parts, columns)


def frame_of(rows: pd.DataFrame | Span) -> pd.DataFrame:
    """A chunk's rows (`chunked_frames`) as a DataFrame, index = line - 2."""
    return read_span(rows) if isinstance(rows, Span) else rows


def in_image_id_order(records: list[ImageRecord]) -> list[tuple[int, ImageRecord]]:
    """Records in memory as `chunked_tables` takes them: (index, record) by ascending ImageId."""
    return sorted(enumerate(records), key=lambda pair: pair[1].image_id)


def _not_in_ground_truth(group: tuple[str, pd.DataFrame | Span], path) -> None:
    image_id, rows = group
    line = rows.first_line if isinstance(rows, Span) else int(rows.index[0]) + 2
    raise InputError(f"image {image_id} is not in the ground truth", path, line)


def _chunk(images, records, parts, columns):
    if parts and isinstance(parts[0], Span):
        rows = joined(parts)
    else:
        rows = pd.concat(parts) if parts else pd.DataFrame(columns=columns)
    return np.array(images, np.int64), records, rows


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

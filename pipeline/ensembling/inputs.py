"""Prediction files to ensemble, walked side by side image by image (`sorted_csv`: files sorted by
ImageId), so memory holds one image's rows of each file, never a whole file.

A file is read as strings; its rows are validated one image at a time with the evaluator's
`predictions_table` (RLE, ClassId, AttributesIds, Score), errors naming the file and line.
`AttributeScores` (id:probability pairs) is optional: files written before it existed, or a row
with no scores, take the row's `AttributesIds` as probability 1 (a hard vote), so fusing them keeps
the models' attribute choices instead of erasing them.

Image sizes, needed to decode the masks, come from the image headers of the dataset
(`pipeline.submission.images.image_size`): the same source `submit` sizes the submission by, only
the headers of images that have predictions are read, and nothing depends on the caches being
built with today's params. The cache stage checks that those headers agree with train.csv, and
predictions are encoded at that size.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data import sorted_csv
from pipeline.data.annotations import ImageRecord
from pipeline.data.cache_format import split_files
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError
from pipeline.scoring.instances import InstanceTable
from pipeline.scoring.predictions import PREDICTION_COLUMNS, SCORE_COLUMN, predictions_table
from pipeline.data.prediction_rows import ATTRIBUTE_SCORES_COLUMN as SCORES_COLUMN
from pipeline.data.prediction_rows import parse_attribute_scores

IMAGE_FOLDERS = {"oof": "train", "test": "test"}  # ensemble split -> dataset split


@dataclass
class PredictionFile:
    path: Path
    weight: float
    has_scores: bool                   # the file has an AttributeScores column


@dataclass
class ImageDetections:
    """One image's detections from every input file, in file order."""
    image_id: str
    height: int
    width: int
    table: InstanceTable               # class_id, attributes, runs, area, score, line
    source: np.ndarray                 # int64 input file index
    weight: np.ndarray                 # float64 weight of the detection's file
    attribute_probs: np.ndarray        # float32 (n, num_attributes)
    encoded: list[str]                 # EncodedPixels as read
    attribute_scores: list[str]        # AttributeScores as read


def open_prediction_file(path: str | Path, weight: float) -> PredictionFile:
    """A prediction file whose header has been checked; its rows are read by `image_frames`."""
    path = Path(path)
    columns = sorted_csv.header(path, (*PREDICTION_COLUMNS, SCORE_COLUMN))
    return PredictionFile(path, float(weight), SCORES_COLUMN in columns)


def image_frames(files: list[PredictionFile]):
    """(ImageId, each file's rows of it or None), every ImageId of any file once, ascending."""
    return sorted_csv.aligned_image_groups([f.path for f in files], (*PREDICTION_COLUMNS, SCORE_COLUMN))


def image_folder(root: str | Path, split: str, layout: str = "kaggle") -> Path:
    """The dataset folder (laid out as `layout`) whose image headers give a split's original image
    sizes (`image_size`)."""
    folder, _ = split_files(root, IMAGE_FOLDERS[split], layout)
    return folder


def image_detections(files: list[PredictionFile], frames: list[pd.DataFrame | None], image_id: str,
                     size: tuple[int, int], ontology: Ontology) -> ImageDetections:
    """The validated detections of one image from all files (blank rows skipped). `frames[k]`: file
    k's rows of the image as CSV strings, index = line - 2 (None: no rows)."""
    height, width = size
    parts, source, probs, encoded, scores_text = [], [], [], [], []
    for index, (file, sub) in enumerate(zip(files, frames)):
        if sub is None:
            continue
        rows = sub.index.to_numpy()
        try:
            table = predictions_table(sub, [ImageRecord(image_id, height, width)], ontology, str(file.path))
        except InputError as error:  # its line counts rows of `sub`: point at the file's line
            raise InputError(error.message, file.path, int(rows[error.line - 2]) + 2) from None
        positions = table.line - 2
        table.line = rows[positions] + 2
        texts = sub[SCORES_COLUMN].tolist() if file.has_scores else [""] * len(sub)
        encoded_texts = sub["EncodedPixels"].tolist()
        for position, line, attributes in zip(positions, table.line, table.attributes):
            text = texts[position]
            probs.append(attribute_vector(text, attributes, ontology, file.path, int(line)))
            encoded.append(encoded_texts[position].strip())
            scores_text.append(text.strip())
        parts.append(table)
        source.append(np.full(len(table), index))
    table = _concatenate(parts)
    source = np.concatenate(source) if source else np.zeros(0, np.int64)
    weights = np.array([f.weight for f in files])[source]
    attribute_probs = np.array(probs, np.float32).reshape(len(table), ontology.num_attributes)
    return ImageDetections(image_id, height, width, table, source.astype(np.int64), weights, attribute_probs,
                           encoded, scores_text)


def attribute_vector(text: str, attributes: tuple[int, ...], ontology: Ontology, path: str | Path,
                     line: int, dtype=np.float32) -> np.ndarray:
    """Probabilities (ontology order) of an AttributeScores field; empty: `attributes` at probability 1."""
    try:
        scores = parse_attribute_scores(text)
        unknown = [a for a in scores if a not in ontology.attribute_index]
        if unknown:
            raise ValueError(f"attribute id {unknown[0]} in AttributeScores is not in the ontology")
    except ValueError as error:
        raise InputError(str(error), path, line) from None
    if not scores:
        return ontology.attributes_to_vector(attributes).astype(dtype)
    vector = np.zeros(ontology.num_attributes, dtype)
    vector[[ontology.attribute_index[a] for a in scores]] = list(scores.values())
    return vector


def _concatenate(tables: list[InstanceTable]) -> InstanceTable:
    return InstanceTable.build(
        np.concatenate([t.image for t in tables]) if tables else [],
        np.concatenate([t.class_id for t in tables]) if tables else [],
        [a for t in tables for a in t.attributes],
        [r for t in tables for r in t.runs],
        np.concatenate([t.score for t in tables]) if tables else [],
        np.concatenate([t.line for t in tables]) if tables else [],
    )

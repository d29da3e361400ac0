"""Fashionpedia's official results format, read and written: what its evaluator (FPEval's
`loadRes`) takes and the papers' numbers were computed from.

A JSON list, one object per predicted instance:

    {"image_id": 123, "category_id": 31, "score": 0.87, "attribute_ids": [115, 136],
     "segmentation": {"size": [height, width], "counts": "<compressed RLE string>"}}

`image_id` is the instances file's numeric id of the image, the mask is pycocotools' compressed RLE
at the image's size (`loadRes` takes no other mask form), `attribute_ids` the ontology's ids. An
optional `bbox` is allowed; note that when the first result has one, `loadRes` takes every
result's area from its box (`w * h`) instead of its mask, which moves predictions between the
small / medium / large ranges (never the headline "all" numbers): `load_results` does the same.

Reading holds the parsed list (`json.load`), grouped by image, and makes the predictions' table a
chunk of images at a time (`results_chunks`); writing streams a predictions CSV row by row.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from pycocotools import mask as coco_mask

from pipeline.data import rle, sorted_csv
from pipeline.data.annotations import ImageRecord, parse_attributes, parse_class_id
from pipeline.data.fashionpedia import ImageEntry, InstancesFile, parsed_json
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError
from pipeline.io import atomic_path
from pipeline.scoring.instances import InstanceTable
from pipeline.scoring.predictions import CHUNK_IMAGES, PREDICTION_COLUMNS, SCORE_COLUMN, parse_score


@dataclass
class ResultsFile:
    path: Path
    results: list                   # as parsed
    by_image: dict[int, list[int]]  # image id -> positions in `results`, list order
    box_area: bool                  # areas from `bbox`, as `loadRes` does when the first result has one


def load_results(path: str | Path, images: list[ImageEntry]) -> ResultsFile:
    """The results list grouped by image; InputError for a result of an image not in `images`.
    The rest of each result is checked when its image is scored (`results_chunks`)."""
    results = parsed_json(path)
    if not isinstance(results, list):
        raise InputError("expected a JSON list of results (image_id, category_id, segmentation, score, "
                         "attribute_ids)", path)
    known = {image.id for image in images}
    by_image: dict[int, list[int]] = {}
    for position, result in enumerate(results):
        image_id = result.get("image_id") if isinstance(result, dict) else None
        if not isinstance(image_id, int) or isinstance(image_id, bool) or image_id not in known:
            raise InputError(f"result {position}: image_id {image_id!r} is not an image of the ground truth", path)
        by_image.setdefault(image_id, []).append(position)
    box_area = bool(results) and bool(results[0].get("bbox"))
    return ResultsFile(Path(path), results, by_image, box_area)


def results_chunks(results: ResultsFile, instances: InstancesFile, ontology: Ontology,
                   chunk_images: int = CHUNK_IMAGES) -> Iterator[tuple[np.ndarray, list[ImageRecord], InstanceTable]]:
    """Every ground-truth image with its results, `chunk_images` images at a time, by image id:
    (the images' positions in `instances.in_id_order()`, their records, their results' table, whose
    `line` is each result's position in the list: the order equal scores keep)."""
    ordered = instances.in_id_order()
    for begin in range(0, len(ordered), chunk_images):
        images = ordered[begin : begin + chunk_images]
        yield (np.arange(begin, begin + len(images), dtype=np.int64), [instances.record(i) for i in images],
               _table(results, images, ontology))


def _table(results: ResultsFile, images: list[ImageEntry], ontology: Ontology) -> InstanceTable:
    image, class_id, attributes, runs, scores, positions, areas = [], [], [], [], [], [], []
    for local, entry in enumerate(images):
        for position in results.by_image.get(entry.id, ()):
            try:
                parsed = _result(results.results[position], entry, ontology, results.box_area)
            except ValueError as error:
                raise InputError(f"result {position} (image_id {entry.id}): {error}", results.path) from None
            for values, value in zip((class_id, attributes, runs, scores, areas), parsed):
                values.append(value)
            image.append(local)
            positions.append(position)
    return InstanceTable.build(image, class_id, attributes, runs, scores, positions,
                               area=areas if results.box_area else None)


def _result(result: dict, image: ImageEntry, ontology: Ontology, box_area: bool):
    """(class id, attribute ids, runs, score, box area or None) of one result; ValueError if bad."""
    category = result.get("category_id")
    if not isinstance(category, int) or isinstance(category, bool):
        raise ValueError(f"category_id {category!r} is not an integer")
    class_id = parse_class_id(str(category), ontology)
    ids = result.get("attribute_ids")
    if not isinstance(ids, list) or not all(isinstance(a, int) and not isinstance(a, bool) for a in ids):
        raise ValueError("attribute_ids must be a list of integers")
    attributes = parse_attributes(",".join(map(str, ids)), ontology)
    score = result.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise ValueError(f"score {score!r} is not a finite number")
    segmentation = result.get("segmentation")
    if not isinstance(segmentation, dict) or not isinstance(segmentation.get("counts"), str):
        raise ValueError("segmentation must be compressed RLE: {size, counts: string}")
    if segmentation.get("size") != [image.height, image.width]:
        raise ValueError(f"RLE size {segmentation.get('size')!r} is not the image's [{image.height}, {image.width}]")
    counts = rle.coco_string_counts(segmentation["counts"])
    if (counts < 0).any() or counts.sum() != image.height * image.width:
        raise ValueError(f"RLE counts do not cover the image's {image.height}x{image.width} pixels")
    area = None
    if box_area:
        box = result.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
            raise ValueError("no bbox [x, y, w, h], which the first result has (areas then come from boxes)")
        area = float(box[2]) * float(box[3])
    return class_id, attributes, rle.counts_to_runs(counts), float(score), area


def write_results(predictions: str | Path, images: list[ImageEntry], ontology: Ontology, out: str | Path) -> int:
    """Write the results JSON of a predictions CSV (submission columns plus Score), in the CSV's row
    order, `images` (an instances or image info file's) giving each ImageId's numeric id and size;
    returns the number of results. Rows that only list an image (no mask, no class) are left out."""
    by_name = {image.image_id: image for image in images}
    count = 0
    with atomic_path(out, suffix=".json") as tmp, open(tmp, "w") as stream:
        stream.write("[")
        for chunk in sorted_csv.chunks(predictions, (*PREDICTION_COLUMNS, SCORE_COLUMN)):
            rows = zip(chunk.index + 2, *(chunk[c].tolist() for c in (*PREDICTION_COLUMNS, SCORE_COLUMN)))
            for line, *cells in rows:
                try:
                    result = _csv_result(cells, by_name, ontology)
                except ValueError as error:
                    raise InputError(str(error), predictions, int(line)) from None
                if result is not None:
                    stream.write(("," if count else "") + "\n" + json.dumps(result))
                    count += 1
        stream.write("\n]\n")
    return count


def _csv_result(cells: list[str], by_name: dict[str, ImageEntry], ontology: Ontology) -> dict | None:
    image_id, encoded, class_text, attribute_text, score_text = cells
    image = by_name.get(image_id.strip())
    if image is None:
        raise ValueError(f"image {image_id.strip()!r} is not in the images file")
    if not encoded.strip() and not class_text.strip():
        return None
    starts, lengths = rle.parse(encoded, image.height, image.width)
    counts = rle.runs_to_counts(starts, lengths, image.height * image.width).astype(np.uint32)
    compressed = coco_mask.frPyObjects({"size": [image.height, image.width], "counts": counts}, image.height,
                                       image.width)
    return {
        "image_id": image.id,
        "category_id": parse_class_id(class_text, ontology),
        "segmentation": {"size": [image.height, image.width], "counts": compressed["counts"].decode("ascii")},
        "score": parse_score(score_text),
        "attribute_ids": list(parse_attributes(attribute_text, ontology)),
    }

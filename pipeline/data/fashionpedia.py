"""Read Fashionpedia's own annotation files: COCO instances with per-mask `attribute_ids`.

The dataset as released (the `fashionpedia` layout of `pipeline.data.cache.split_files`):

    <root>/train/<file_name>            images of  <root>/instances_attributes_train2020.json
    <root>/test/ (or val/)<file_name>   images of  <root>/instances_attributes_val2020.json

A file holds `images` (id, file_name, height, width), `annotations` (id, image_id, category_id,
segmentation, area, iscrowd, attribute_ids), `categories` and `attributes`, whose ids must be the
ontology's (Kaggle's label_descriptions.json is the same ontology). A segmentation is a list of
polygons ([x1, y1, x2, y2, ...] each), or RLE with uncompressed (a list) or compressed (a string)
counts. Polygons are rasterised as pycocotools does for the official evaluator (`frPyObjects`,
then `merge`), so a mask here is the mask FPEval scores.

JSON cannot be read without reading it whole: `load_instances` holds the parsed file (about what
`json.load` needs for it) and validates every annotation up front; an error is one line naming the
file and the image or annotation id. Records (`ImageRecord`, masks as Kaggle RLE, the form the
Kaggle CSV reader gives) are then made one image at a time, so nothing else grows with the file.
An image's ImageId is its file name without the extension: Kaggle's ImageId of the same photo.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from pycocotools import mask as coco_mask

from pipeline.data import rle
from pipeline.data.annotations import ImageRecord, Instance
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError


@dataclass(frozen=True)
class ImageEntry:
    id: int
    file_name: str
    height: int
    width: int

    @property
    def image_id(self) -> str:
        return Path(self.file_name).stem


@dataclass
class InstancesFile:
    """A validated instances file; `annotations` are its entries as parsed, converted per image."""
    path: Path
    images: list[ImageEntry]        # file order
    annotations: list[dict]         # the valid ones, file order
    by_image: dict[int, list[int]]  # image id -> positions in `annotations`, file order

    def record(self, image: ImageEntry) -> ImageRecord:
        """The image's instances in file order, masks as Kaggle RLE, `area` as the file gives it."""
        instances = [_instance(self.annotations[k], image) for k in self.by_image.get(image.id, ())]
        return ImageRecord(image.image_id, image.height, image.width, instances)

    def annotated(self) -> list[ImageEntry]:
        """The images with at least one annotation, in file order."""
        return [image for image in self.images if self.by_image.get(image.id)]

    def in_id_order(self) -> list[ImageEntry]:
        """The evaluation's image order: the reference evaluators take image ids sorted, which
        decides how equal scores of different images rank."""
        return sorted(self.images, key=lambda image: image.id)

    def records_by_image_id(self) -> Iterator[tuple[int, ImageRecord]]:
        """(position in `in_id_order`, record) by ascending ImageId: the order of prediction CSVs."""
        ordered = self.in_id_order()
        for index in sorted(range(len(ordered)), key=lambda i: ordered[i].image_id):
            yield index, self.record(ordered[index])


def parsed_json(path: str | Path):
    """A file's JSON value; InputError if missing or unreadable."""
    try:
        with open(path, "rb") as stream:
            return json.load(stream)
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"not a readable JSON file ({error})", path) from None


def read_json(path: str | Path) -> dict:
    """A JSON object from a file; InputError if missing, unreadable or not an object."""
    data = parsed_json(path)
    if not isinstance(data, dict):
        raise InputError("expected a JSON object with images, annotations, categories", path)
    return data


def read_images(path: str | Path, data: dict | None = None) -> list[ImageEntry]:
    """The `images` of an instances (or image info) file, validated, in file order."""
    data = read_json(path) if data is None else data
    entries = data.get("images")
    if not isinstance(entries, list):
        raise InputError("no `images` list", path)
    images, ids, names = [], set(), set()
    for position, entry in enumerate(entries):
        try:
            image = _image(entry)
            if image.id in ids:
                raise ValueError("id given twice")
            if image.image_id in names:
                raise ValueError(f"a second image named {image.image_id}")
        except ValueError as error:
            raise InputError(f"image {_name(entry, position)}: {error}", path) from None
        ids.add(image.id)
        names.add(image.image_id)
        images.append(image)
    return images


def load_instances(path: str | Path, ontology: Ontology,
                   on_error: str = "raise") -> tuple[InstancesFile, list[InputError]]:
    """The file validated (InputError at the first bad entry), and with on_error='skip' the errors
    of the annotations left out."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    data = read_json(path)
    _check_labels(data, "categories", [c.id for c in ontology.categories], path)
    _check_labels(data, "attributes", [a.id for a in ontology.attributes], path)
    images = read_images(path, data)
    sizes = {image.id: image for image in images}
    entries = data.get("annotations")
    if not isinstance(entries, list):
        raise InputError("no `annotations` list", path)
    annotations, by_image, errors, ids = [], {}, [], set()
    for position, entry in enumerate(entries):
        try:
            image = _check_annotation(entry, sizes, ontology)
            if entry["id"] in ids:
                raise ValueError("id given twice")
        except ValueError as error:
            error = InputError(f"annotation {_name(entry, position)}: {error}", path)
            if on_error == "raise":
                raise error from None
            errors.append(error)
            continue
        ids.add(entry["id"])
        by_image.setdefault(image.id, []).append(len(annotations))
        annotations.append(entry)
    return InstancesFile(Path(path), images, annotations, by_image), errors


def segmentation_runs(segmentation, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """0-based column-major (starts, lengths) of a segmentation that `_check_segmentation` passed."""
    if isinstance(segmentation, list):  # polygons, rasterised as the reference evaluators do
        merged = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
        counts = rle.coco_string_counts(merged["counts"])
    elif isinstance(segmentation["counts"], str):
        counts = rle.coco_string_counts(segmentation["counts"])
    else:
        counts = np.asarray(segmentation["counts"], np.int64)
    return rle.counts_to_runs(counts)


def _instance(annotation: dict, image: ImageEntry) -> Instance:
    runs = segmentation_runs(annotation["segmentation"], image.height, image.width)
    area = annotation.get("area")
    return Instance(annotation["category_id"], rle.runs_to_string(*runs), tuple(sorted(set(annotation["attribute_ids"]))),
                    area=None if area is None else float(area))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _name(entry, position: int) -> str:
    """How a message names an entry: its id, else its position in the list."""
    if isinstance(entry, dict) and _is_int(entry.get("id")):
        return str(entry["id"])
    return f"#{position} (no integer id)"


def _image(entry) -> ImageEntry:
    if not isinstance(entry, dict):
        raise ValueError("not an object")
    if not _is_int(entry.get("id")):
        raise ValueError("no integer id")
    name = entry.get("file_name")
    if not isinstance(name, str) or not Path(name).stem:
        raise ValueError(f"file_name {name!r} is not a file name")
    for key in ("height", "width"):
        if not _is_int(entry.get(key)) or entry[key] < 1:
            raise ValueError(f"{key} {entry.get(key)!r} is not a positive integer")
    return ImageEntry(entry["id"], name, entry["height"], entry["width"])


def _check_labels(data: dict, key: str, expected: list[int], path) -> None:
    """The file's categories or attributes must have the ontology's ids (names are not compared)."""
    entries = data.get(key)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"no `{key}` list", path)
    ids = {e.get("id") for e in entries}
    if ids != set(expected):
        different = sorted(ids ^ set(expected), key=str)[:3]
        raise InputError(f"`{key}` ids differ from the ontology's (e.g. {different}): another ontology?", path)


def _check_annotation(entry, images: dict[int, ImageEntry], ontology: Ontology) -> ImageEntry:
    """The annotation's image; ValueError naming what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError("not an object")
    if not _is_int(entry.get("id")):
        raise ValueError("no integer id")
    image = images.get(entry.get("image_id")) if _is_int(entry.get("image_id")) else None
    if image is None:
        raise ValueError(f"image_id {entry.get('image_id')!r} is not in the file's images")
    category = entry.get("category_id")
    if not _is_int(category) or not 0 <= category < ontology.num_classes:
        raise ValueError(f"category_id {category!r} outside 0..{ontology.num_classes - 1}")
    attributes = entry.get("attribute_ids")
    if not isinstance(attributes, list) or not all(_is_int(a) for a in attributes):
        raise ValueError("attribute_ids must be a list of integers")
    unknown = [a for a in attributes if a not in ontology.attribute_index]
    if unknown:
        raise ValueError(f"attribute id {unknown[0]} is not in the ontology")
    if entry.get("iscrowd", 0) != 0:
        raise ValueError("iscrowd is set: crowd annotations are not supported")
    area = entry.get("area")
    if area is not None and not (_is_number(area) and area >= 0):
        raise ValueError(f"area {area!r} is not a non-negative number")
    _check_segmentation(entry.get("segmentation"), image.height, image.width)
    return image


def _check_segmentation(segmentation, height: int, width: int) -> None:
    if isinstance(segmentation, list):
        if not segmentation:
            raise ValueError("empty segmentation")
        for k, polygon in enumerate(segmentation, 1):
            if not isinstance(polygon, list) or not all(_is_number(v) for v in polygon):
                raise ValueError(f"polygon {k} is not a list of numbers")
            # pycocotools reads a first "polygon" of 4 numbers as a box: only real polygons pass.
            if len(polygon) % 2 or len(polygon) < 6:
                raise ValueError(f"polygon {k} has {len(polygon)} coordinates: a polygon is 3 or more x, y pairs")
        return
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise ValueError("segmentation is neither polygons nor RLE ({size, counts})")
    if segmentation["size"] != [height, width]:
        raise ValueError(f"RLE size {segmentation['size']!r} is not the image's [{height}, {width}]")
    counts = segmentation["counts"]
    if isinstance(counts, str):
        try:
            values = rle.coco_string_counts(counts)
        except rle.RLEError as error:
            raise ValueError(str(error)) from None
    elif isinstance(counts, list) and all(_is_int(c) for c in counts):
        values = np.asarray(counts, np.int64)
    else:
        raise ValueError("RLE counts must be a list of integers or a compressed string")
    if (values < 0).any():
        raise ValueError("RLE counts hold a negative run length")
    if values.sum() != height * width:
        raise ValueError(f"RLE counts cover {int(values.sum())} pixels, not {height}x{width}={height * width}")

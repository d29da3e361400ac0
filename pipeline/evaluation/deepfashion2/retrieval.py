"""DeepFashion2 consumer-to-shop retrieval: top-k accuracy by the official protocol, quirks included.

`shared/DEEPFASHION2.md` section 5 (the published `deepfashion2_retrieval_test.py` cannot run:
Python 2 prints and a NameError; the protocol is its logic with those fixed):

1. The denominator is the number of query-GT items with style > 0; what is not found is a miss.
2. Results for images not in the query GT are ignored.
3. Every detection goes to the image's item it overlaps most (box IoU, COCO), style-0 items
   included, with no minimum IoU; ties go to the earlier item, so a detection that overlaps
   nothing belongs to the image's first item.
4. An item's candidates are the detections assigned to it whose query_cls is its category; the
   highest query_score represents it (first in file order on ties); none: missed.
5. Rank t is correct if gallery_image_id[t] is the image of a gallery item with the item's
   pair_id and style and gallery_bbox[t] has IoU >= 0.5 with such an item of that image.
6. top-k = items correct within ranks 1..k / denominator; only 20 ranks are read, missing ones
   are wrong.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.data.deepfashion2.annotations import CATEGORIES, CATEGORY_BY_ID, RANKS
from pipeline.errors import InputError
from pipeline.evaluation.deepfashion2.metrics import box_iou, group_pairs

TOP_K = (1, 5, 10, 15, 20)
HIT_IOU = 0.5


@dataclass
class Boxes:
    """Rows of a ground-truth or result file; `box` in xywh (converted from the files' corners)."""

    image: np.ndarray
    box: np.ndarray
    category: np.ndarray | None = None
    style: np.ndarray | None = None
    pair_id: np.ndarray | None = None
    score: np.ndarray | None = None


@dataclass
class RetrievalResults:
    query: Boxes  # one row per entry, `category` = query_cls, `score` = query_score
    gallery_image: np.ndarray  # (entries, 20) int64, -1 past a shorter list
    gallery_box: np.ndarray  # (entries, 20, 4) xywh


def read_query_gt(data, path) -> Boxes:
    rows = _entries(data, path, {"query_image_id": _integer, "bbox": _box, "cls": _integer, "style": _integer,
                                 "pair_id": _integer})
    for number, entry in rows:
        if entry["cls"] not in CATEGORY_BY_ID:
            raise InputError(f"entry {number}: cls {entry['cls']} is not a DeepFashion2 category (1..13)", path)
    return _boxes(rows, "query_image_id", "bbox", category="cls", pairs=True)


def read_gallery_gt(data, path) -> Boxes:
    rows = _entries(data, path, {"gallery_image_id": _integer, "bbox": _box, "style": _integer, "pair_id": _integer})
    return _boxes(rows, "gallery_image_id", "bbox", pairs=True)


def read_results(data, path) -> RetrievalResults:
    # The gallery lists' entries are checked with their boxes below, up to rank 20.
    rows = _entries(data, path, {"query_image_id": _integer, "query_bbox": _box, "query_cls": _integer,
                                 "query_score": _number, "gallery_image_id": _list, "gallery_bbox": _list})
    gallery_image = np.full((len(rows), RANKS), -1, np.int64)
    gallery_box = np.zeros((len(rows), RANKS, 4))
    for row, (number, entry) in enumerate(rows):
        where = f"entry {number}: "
        if entry["query_cls"] not in CATEGORY_BY_ID:
            raise InputError(f"{where}query_cls {entry['query_cls']} is not a DeepFashion2 category (1..13)", path)
        ids, boxes = entry["gallery_image_id"], entry["gallery_bbox"]
        if len(ids) != len(boxes):
            raise InputError(f"{where}gallery_image_id has {len(ids)} entries but gallery_bbox {len(boxes)}", path)
        for rank, (image_id, box) in enumerate(zip(ids[:RANKS], boxes[:RANKS])):
            gallery_image[row, rank] = _integer(image_id, f"{where}gallery_image_id[{rank}]", path)
            gallery_box[row, rank] = _corners_to_xywh(_box(box, f"{where}gallery_bbox[{rank}]", path))
    return RetrievalResults(_boxes(rows, "query_image_id", "query_bbox", category="query_cls", score="query_score"),
                            gallery_image, gallery_box)


def _entries(data, path, checks: dict) -> list[tuple[int, dict]]:
    """(1-based entry number, entry) of a JSON list whose entries hold every key of `checks`, each
    passing its check."""
    if not isinstance(data, list):
        raise InputError(f"must be a JSON list, got {type(data).__name__}", path)
    rows = []
    for number, entry in enumerate(data, 1):
        where = f"entry {number}: "
        if not isinstance(entry, dict):
            raise InputError(f"{where}must be a JSON object, got {type(entry).__name__}", path)
        for key, check in checks.items():
            if key not in entry:
                raise InputError(f"{where}missing key {key!r}", path)
            check(entry[key], where + key, path)
        rows.append((number, entry))
    return rows


def _integer(value, what: str, path) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be an integer, got {value!r}", path)
    return value


def _number(value, what: str, path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{what} must be a finite number, got {value!r}", path)
    return value


def _box(value, what: str, path) -> list:
    if not isinstance(value, list) or len(value) != 4:
        raise InputError(f"{what} must be 4 numbers x1, y1, x2, y2, got {value!r}", path)
    for number in value:
        _number(number, what, path)
    return value


def _list(value, what: str, path) -> list:
    if not isinstance(value, list):
        raise InputError(f"{what} must be a list, got {type(value).__name__}", path)
    return value


def _corners_to_xywh(box) -> list:
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]]


def _column(rows, key: str | None, dtype) -> np.ndarray | None:
    return None if key is None else np.array([entry[key] for _, entry in rows], dtype)


def _boxes(rows, image_key: str, box_key: str, category: str | None = None, score: str | None = None,
           pairs: bool = False) -> Boxes:
    """The columns of validated rows; `pairs`: with style and pair_id."""
    return Boxes(
        image=_column(rows, image_key, np.int64),
        box=np.array([_corners_to_xywh(entry[box_key]) for _, entry in rows], np.float64).reshape(-1, 4),
        category=_column(rows, category, np.int64),
        style=_column(rows, "style" if pairs else None, np.int64),
        pair_id=_column(rows, "pair_id" if pairs else None, np.int64),
        score=_column(rows, score, np.float64),
    )


def representatives(query: Boxes, results: Boxes) -> tuple[np.ndarray, int]:
    """The result row representing each query item (-1: missed), and the count of ignored results."""
    known = np.isin(results.image, query.image)
    result_row, item = group_pairs(results.image, query.image)
    iou = box_iou(results.box[result_row], query.box[item])
    # Per result: the highest IoU, the earliest item on ties (pairs come in item file order).
    order = np.lexsort((item, -iou, result_row))
    first = order[np.r_[True, result_row[order][1:] != result_row[order][:-1]]] if order.size else order
    assigned_result, assigned_item = result_row[first], item[first]
    same_class = results.category[assigned_result] == query.category[assigned_item]
    assigned_result, assigned_item = assigned_result[same_class], assigned_item[same_class]
    # Per item: the highest score, the earliest result on ties.
    order = np.lexsort((assigned_result, -results.score[assigned_result], assigned_item))
    representative = np.full(query.image.size, -1, np.int64)
    if order.size:
        first = order[np.r_[True, assigned_item[order][1:] != assigned_item[order][:-1]]]
        representative[assigned_item[first]] = assigned_result[first]
    return representative, int((~known).sum())


def first_hits(query: Boxes, gallery: Boxes, results: RetrievalResults, representative: np.ndarray) -> np.ndarray:
    """0-based rank of each query item's first correct entry; RANKS where none (or missed)."""
    items = np.flatnonzero((representative >= 0) & (query.style > 0))
    # One key per (pair_id, style, gallery image): an entry meets the true matches of its own key.
    entry_keys = np.stack([np.repeat(query.pair_id[items], RANKS), np.repeat(query.style[items], RANKS),
                           results.gallery_image[representative[items]].ravel()], axis=1)
    gallery_keys = np.stack([gallery.pair_id, gallery.style, gallery.image], axis=1)
    _, ids = np.unique(np.concatenate([entry_keys, gallery_keys]), axis=0, return_inverse=True)
    ids = ids.ravel()
    entry, match = group_pairs(ids[: len(entry_keys)], ids[len(entry_keys):])
    entry_boxes = results.gallery_box[representative[items]].reshape(-1, 4)
    hit = np.zeros(len(entry_keys), bool)
    hit[entry[box_iou(entry_boxes[entry], gallery.box[match]) >= HIT_IOU]] = True
    hit &= entry_keys[:, 2] >= 0  # past the end of a shorter list
    hit = hit.reshape(-1, RANKS)
    ranks = np.full(query.image.size, RANKS, np.int64)
    ranks[items] = np.where(hit.any(axis=1), hit.argmax(axis=1), RANKS)
    return ranks


def evaluate(query: Boxes, gallery: Boxes, results: RetrievalResults, query_path=None) -> dict:
    counted = query.style > 0
    if not counted.any():
        raise InputError("no query item with style > 0: top-k is undefined", query_path)
    representative, ignored = representatives(query, results.query)
    ranks = first_hits(query, gallery, results, representative)
    metrics = {f"top{k}": float(np.mean(ranks[counted] < k)) for k in TOP_K}
    metrics.update({"queries": int(counted.sum()), "missed": int((counted & (representative < 0)).sum()),
                    "results": int(results.query.image.size), "ignored_results": ignored})
    metrics["categories"] = {}
    for category in CATEGORIES:
        rows = counted & (query.category == category.id)
        scores = {f"top{k}": float(np.mean(ranks[rows] < k)) if rows.any() else -1.0 for k in TOP_K}
        metrics["categories"][category.name] = {"id": category.id, "queries": int(rows.sum()), **scores}
    return metrics

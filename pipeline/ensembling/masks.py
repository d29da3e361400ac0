"""Mask helpers of one image's detections: IoU on run-length masks, weighted votes in a window.

IoU runs in pycocotools' C code on the run-length masks at the original size (`mask.iou`, as the
evaluator does), so no pixel is decoded and the numbers are exact. A vote decodes only the columns
of the members' joint bounding box, so memory per image stays bounded by one image-sized window
however many detections it has.
"""
from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask

from pipeline.data import rle
from pipeline.scoring.instances import InstanceTable
from pipeline.scoring.masks import coco_rles


def iou_matrix(table: InstanceTable, height: int, width: int) -> np.ndarray:
    """(n, n) mask IoU of one image's detections; pairs of different classes get 0 (never computed)."""
    iou = np.zeros((len(table), len(table)))
    for class_id in np.unique(table.class_id):
        rows = np.flatnonzero(table.class_id == class_id)
        rles = coco_rles(table, rows, height, width)
        block = coco_mask.iou(rles, rles, np.zeros(rows.size, np.uint8))
        iou[np.ix_(rows, rows)] = np.asarray(block, np.float64).reshape(rows.size, rows.size)
    return iou


def decode_columns(runs: tuple[np.ndarray, np.ndarray], height: int, x0: int, x1: int) -> np.ndarray:
    """The (height, x1 - x0) uint8 slab of columns x0..x1-1 of a column-major run-length mask."""
    starts, lengths = runs
    low, high = x0 * height, x1 * height
    begin, end = np.maximum(starts, low), np.minimum(starts + lengths, high)
    inside = end > begin
    counts = rle.runs_to_counts(begin[inside] - low, (end - begin)[inside], high - low)
    return rle.counts_to_mask(counts, height, x1 - x0)


def weighted_vote(runs: list[tuple[np.ndarray, np.ndarray]], weights: np.ndarray, height: int, width: int,
                  threshold: float) -> str:
    """Kaggle RLE of the pixels whose weighted share of the member masks reaches `threshold`."""
    shares = np.asarray(weights, np.float64) / np.sum(weights)
    first = [starts[0] // height for starts, _ in runs if starts.size]
    last = [(starts[-1] + lengths[-1] - 1) // height for starts, lengths in runs if starts.size]
    if not first:
        return ""
    x0, x1 = int(min(first)), int(max(last)) + 1
    votes = np.zeros((height, x1 - x0), np.float32)
    for member, share in zip(runs, shares):
        votes += share * decode_columns(member, height, x0, x1)
    # A small tolerance so that e.g. 2 of 4 equal votes reach 0.5 despite float32 sums.
    return rle.encode(votes >= threshold - 1e-6, 0, x0, height, width)

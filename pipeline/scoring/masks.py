"""Mask IoU between predictions and ground truths of the same image and class.

IoU runs on run-length masks in pycocotools' C code (`mask.iou`, linear in the number of runs, with
a bounding-box pre-check), one call per image: no pixel is ever decoded. Its numbers are the ones
COCOeval and FPEval compare against their thresholds, bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools import mask as coco_mask

from pipeline.data import rle
from pipeline.scoring.instances import InstanceTable


@dataclass
class Pairs:
    """(prediction, ground truth) pairs of one image and class whose IoU reaches a floor."""
    pred: np.ndarray  # int64 row in the predictions table
    gt: np.ndarray    # int64 row in the ground-truth table
    iou: np.ndarray   # float64

    def select(self, keep: np.ndarray) -> "Pairs":
        return Pairs(self.pred[keep], self.gt[keep], self.iou[keep])


def overlapping_pairs(
    gt: InstanceTable, pred: InstanceTable, sizes: list[tuple[int, int]], min_iou: float
) -> Pairs:
    """All same-image, same-class pairs with IoU >= `min_iou` (image by image; `sizes` per image)."""
    found_pred, found_gt, found_iou = [], [], []
    gt_by_image = _rows_by_image(gt.image, len(sizes))
    pred_by_image = _rows_by_image(pred.image, len(sizes))
    for image, (height, width) in enumerate(sizes):
        gt_rows, pred_rows = gt_by_image[image], pred_by_image[image]
        if not gt_rows.size or not pred_rows.size:
            continue
        # Only masks whose class is on both sides can pair up.
        shared = np.intersect1d(gt.class_id[gt_rows], pred.class_id[pred_rows])
        gt_rows = gt_rows[np.isin(gt.class_id[gt_rows], shared)]
        pred_rows = pred_rows[np.isin(pred.class_id[pred_rows], shared)]
        if not gt_rows.size:
            continue
        ious = coco_mask.iou(
            coco_rles(pred, pred_rows, height, width),
            coco_rles(gt, gt_rows, height, width),
            np.zeros(gt_rows.size, np.uint8),
        )
        keep = (pred.class_id[pred_rows, None] == gt.class_id[None, gt_rows]) & (ious >= min_iou)
        p, g = np.nonzero(keep)
        found_pred.append(pred_rows[p])
        found_gt.append(gt_rows[g])
        found_iou.append(ious[p, g])
    if not found_pred:
        return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    return Pairs(np.concatenate(found_pred), np.concatenate(found_gt), np.concatenate(found_iou))


def _rows_by_image(image: np.ndarray, count: int) -> list[np.ndarray]:
    order = np.argsort(image, kind="stable")
    bounds = np.searchsorted(image[order], np.arange(count + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(count)]


def coco_rles(table: InstanceTable, rows, height: int, width: int) -> list[dict]:
    """pycocotools compressed RLEs of some rows of a table, all of one image."""
    size = height * width
    uncompressed = [
        {"size": [height, width], "counts": rle.runs_to_counts(*table.runs[row], size).astype(np.uint32)}
        for row in rows
    ]
    return coco_mask.frPyObjects(uncompressed, height, width)

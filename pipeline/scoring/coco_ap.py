"""COCO-style average precision, shared by AP_IoU (pycocotools) and AP_IoU+F1 (FPEval).

Both reference evaluators match each (image, class) greedily: predictions in score order, each
scanning the free ground truths in file order (area-ignored ones last) and keeping a running best
that a later candidate replaces when it is at least as good. COCOeval's rule is "IoU >= best IoU";
FPEval's is "IoU >= best IoU and F1 >= best F1", the running bests starting at the thresholds.
`match` implements the second; with every F1 equal to 1 and an F1 threshold of 0 it is the first.

Only pairs that can pass the loosest threshold (IoU >= 0.5, F1 >= 0.5) are ever candidates, so
the greedy walk runs over candidate lists of length 0 or 1 almost always. All (image, class)
groups and all thresholds advance together: step r handles the r-th prediction of every group,
sub-step k its k-th candidate, as numpy operations over (predictions, thresholds) arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# pycocotools' own expressions, so the thresholds are the same floats.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
F1_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RANGES = {"all": (0, 1e5**2), "small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, 1e5**2)}
MAX_DETECTIONS = 100  # per image and class


@dataclass
class Candidates:
    """Detection-ground truth pairs that can pass some threshold, with their IoU and F1."""
    dt: np.ndarray   # int64 index into the detections
    gt: np.ndarray   # int64 index into the ground truths
    iou: np.ndarray  # float64
    f1: np.ndarray   # float64; all ones where attributes do not count


def top_detections(
    image: np.ndarray, group: np.ndarray, score: np.ndarray, max_detections: int = MAX_DETECTIONS
) -> tuple[np.ndarray, np.ndarray]:
    """The rows among the `max_detections` best of their (image, class) group, and their rank there.

    Rows come back in accumulation order, the one both references use: score descending, ties
    broken by image (ground-truth order), then by file order.
    """
    order = np.lexsort((image, -score))  # lexsort is stable: full ties keep file order
    in_group = np.argsort(group[order], kind="stable")
    ranked = order[in_group]
    group_start = np.searchsorted(group[ranked], group[ranked], side="left")
    rank = np.empty(score.size, np.int64)
    rank[ranked] = np.arange(score.size) - group_start
    rows = order[rank[order] < max_detections]
    return rows, rank[rows]


def match(
    candidates: Candidates,
    dt_rank: np.ndarray,
    gt_ignored: np.ndarray,
    iou_thresholds: np.ndarray,
    f1_thresholds: np.ndarray,
) -> np.ndarray:
    """Greedy matching at T threshold pairs (iou_thresholds[t], f1_thresholds[t]) at once.

    Returns the matched ground truth of every detection at every threshold pair, shape
    (detections, T), -1 where unmatched.
    """
    matched = np.full((dt_rank.size, iou_thresholds.size), -1, np.int64)
    if not candidates.dt.size:
        return matched
    # Each detection scans its candidates regular ground truths first, then in file order.
    order = np.lexsort((candidates.gt, gt_ignored[candidates.gt], candidates.dt))
    position = np.arange(order.size) - np.searchsorted(candidates.dt[order], candidates.dt[order])
    # Steps: the r-th detections of all groups, their k-th candidates; rank by rank.
    steps = np.lexsort((position, dt_rank[candidates.dt[order]]))
    order, position = order[steps], position[steps]
    dt, gt = candidates.dt[order], candidates.gt[order]
    iou, f1 = candidates.iou[order, None], candidates.f1[order, None]
    rank = dt_rank[dt]
    new_step = np.flatnonzero((np.diff(rank) != 0) | (np.diff(position) != 0)) + 1

    taken = np.zeros((gt_ignored.size, iou_thresholds.size), bool)
    # The running bests start at the thresholds (clipped below 1, as the references do).
    best_iou = np.empty(matched.shape)
    best_f1 = np.empty(matched.shape)
    for begin, end in zip(np.r_[0, new_step], np.r_[new_step, dt.size]):
        d, g = dt[begin:end], gt[begin:end]
        if position[begin] == 0:
            best_iou[d] = np.minimum(iou_thresholds, 1 - 1e-10)
            best_f1[d] = np.minimum(f1_thresholds, 1 - 1e-10)
        current = matched[d]
        # Once a regular ground truth is matched, the ignored ones (all after it) are not looked at.
        stopped = (current >= 0) & ~gt_ignored[np.maximum(current, 0)] & gt_ignored[g][:, None]
        better = ~taken[g] & ~stopped & (iou[begin:end] >= best_iou[d]) & (f1[begin:end] >= best_f1[d])
        best_iou[d] = np.where(better, iou[begin:end], best_iou[d])
        best_f1[d] = np.where(better, f1[begin:end], best_f1[d])
        matched[d] = np.where(better, g[:, None], current)
        if end == dt.size or rank[end] != rank[begin]:
            # This rank is done in every group: its matches are no longer free for the next ranks.
            at_rank = matched[dt_rank == rank[begin]]
            row, threshold = np.nonzero(at_rank >= 0)
            taken[at_rank[row, threshold], threshold] = True
    return matched


# Entries (thresholds x detections) of one block of `precision_recall`'s arrays, about 40 bytes each
# at once: a class with a million detections at 100 (IoU, F1) pairs would otherwise take gigabytes.
BLOCK_ENTRIES = 1 << 18


def precision_recall(
    dt_class: np.ndarray,
    dt_matched: np.ndarray,
    dt_ignored: np.ndarray,
    thresholds: int,
    regular: np.ndarray,
    classes: np.ndarray,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval.accumulate for one area range: precision (T, recall points, classes), recall (T, classes).

    Detections must be in accumulation order. `dt_matched` / `dt_ignored`: (detections, T)
    booleans packed along T (`np.packbits(..., axis=1)`); `regular`: the ground truths per class
    that the area range does not ignore. Entries of classes without regular ground truth, or not in
    `classes`, stay -1. One class and a block of thresholds at a time (`BLOCK_ENTRIES`): memory
    follows neither all detections nor all thresholds, and each threshold's values are the same
    as in one pass.
    """
    precision = -np.ones((thresholds, RECALL_THRESHOLDS.size, num_classes))
    recall = -np.ones((thresholds, num_classes))
    # Each class's rows in accumulation order: one stable sort by class instead of a scan per class.
    by_class = np.argsort(dt_class, kind="stable")
    bounds = np.searchsorted(dt_class[by_class], np.arange(num_classes + 1))
    for k in classes:
        if regular[k] == 0:
            continue
        rows = by_class[bounds[k]:bounds[k + 1]]
        if not rows.size:
            precision[:, :, k] = 0.0
            recall[:, k] = 0.0
            continue
        hit, ignored = dt_matched[rows], dt_ignored[rows]
        step = max(1, min(thresholds, BLOCK_ENTRIES // rows.size))
        for first in range(0, thresholds, step):
            last = min(first + step, thresholds)
            precision[first:last, :, k], recall[first:last, k] = _block(hit, ignored, first, last, regular[k])
    return precision, recall


def _block(hit: np.ndarray, ignored: np.ndarray, first: int, last: int, regular: int) -> tuple[np.ndarray, np.ndarray]:
    """One class's precision (thresholds first..last-1, recall points) and recall, as COCOeval
    accumulates each threshold."""
    columns = slice(first // 8, (last - 1) // 8 + 1)  # the packed bytes holding these thresholds
    bits = slice(first % 8, first % 8 + last - first)
    # (thresholds, detections), each threshold's row contiguous.
    matched = np.unpackbits(hit[:, columns], axis=1)[:, bits].astype(bool).T
    counted = ~np.unpackbits(ignored[:, columns], axis=1)[:, bits].astype(bool).T
    tp = np.cumsum(np.ascontiguousarray(matched & counted), axis=1).astype(float)
    fp = np.cumsum(np.ascontiguousarray(~matched & counted), axis=1).astype(float)
    rc = tp / regular
    pr = tp / (fp + tp + np.spacing(1))
    # Precision made monotone: the best precision at any higher recall.
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    detections = tp.shape[1]
    precision = np.empty((last - first, RECALL_THRESHOLDS.size))
    for t in range(last - first):
        at = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
        precision[t] = np.where(at < detections, pr[t, np.minimum(at, detections - 1)], 0.0)
    return precision, rc[:, -1]


def class_precision(image: np.ndarray, score: np.ndarray, candidates: Candidates, gt_count: int,
                    iou_thresholds: np.ndarray, f1_thresholds: np.ndarray) -> np.ndarray:
    """One class's precision (thresholds, recall points) over the area range "all", where nothing is
    ignored, as the whole evaluation computes it: its detections (`image`, `score`, in file order)
    cut to the `MAX_DETECTIONS` best per image and ranked (score, then image, then file order),
    matched to its `gt_count` ground truths at the threshold pairs. `candidates.dt` indexes the
    detections as given. A scorer re-scoring one class needs nothing more."""
    top, rank = top_detections(image, image, score)
    detection_of = np.full(score.size, -1)
    detection_of[top] = np.arange(top.size)
    keep = detection_of[candidates.dt] >= 0
    ranked = Candidates(detection_of[candidates.dt[keep]], candidates.gt[keep], candidates.iou[keep],
                        candidates.f1[keep])
    matched = match(ranked, rank, np.zeros(gt_count, bool), iou_thresholds, f1_thresholds)
    hit = np.packbits(matched >= 0, axis=1)
    precision, _ = precision_recall(np.zeros(top.size, np.int64), hit, np.zeros_like(hit), iou_thresholds.size,
                                    np.array([gt_count]), np.array([0]), 1)
    return precision[..., 0]


def mean_defined(values: np.ndarray) -> float:
    """Mean of the entries > -1 (COCOeval.summarize), -1 when there are none."""
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else -1.0

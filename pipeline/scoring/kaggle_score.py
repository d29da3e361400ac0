"""The iMaterialist (Fashion) 2020 leaderboard score, reconstructed from its description (METRICS.md §3).

Per image and class present on either side, and per threshold pair (t_iou, t_f1) of
0.50:0.05:0.95 x 0.50:0.05:0.95, predictions and ground truths are matched one-to-one greedily by
descending IoU among the pairs that are hits (IoU above t_iou and, when the ground truth has
attributes, set-F1 above t_f1); the pair scores TP / (TP + FP + FN). An (image, class) scores the
mean over the 100 pairs, the file the mean over all (image, class) entries; an image with nothing
on either side scores 1. The hidden scorer's two unknowns are options (see `KaggleOptions`).
"""
from __future__ import annotations

import numpy as np

from pipeline.scoring.coco_ap import F1_THRESHOLDS, IOU_THRESHOLDS
from pipeline.scoring.kaggle_options import KaggleOptions

def kaggle_score(
    gt_group: np.ndarray,
    pred_group: np.ndarray,
    pair_pred: np.ndarray,
    pair_gt: np.ndarray,
    pair_iou: np.ndarray,
    pair_f1: np.ndarray,
    gt_has_attributes: np.ndarray,
    empty_images: int,
    options: KaggleOptions = KaggleOptions(),
) -> float:
    """Score from (image, class) group keys of ground truths and predictions, and the pairs of one
    group with IoU >= 0.5 (their set-F1 in `pair_f1`); `empty_images` have nothing on either side."""
    total, groups = kaggle_sums(gt_group, pred_group, pair_pred, pair_gt, pair_iou, pair_f1, gt_has_attributes,
                                options)
    return float((total + empty_images) / (groups + empty_images)) if groups + empty_images else 1.0


def kaggle_sums(gt_group, pred_group, pair_pred, pair_gt, pair_iou, pair_f1, gt_has_attributes,
                options: KaggleOptions = KaggleOptions()) -> tuple[float, int]:
    """(sum of the (image, class) groups' scores, number of groups): groups are independent, so
    threshold tuning re-scores the groups of one class at a time and adds the sums up."""
    groups, group_index = np.unique(np.concatenate([gt_group, pred_group]), return_inverse=True)
    gt_count = np.bincount(group_index[: gt_group.size], minlength=groups.size)
    pred_count = np.bincount(group_index[gt_group.size :], minlength=groups.size)

    iou_thresholds = np.repeat(IOU_THRESHOLDS, F1_THRESHOLDS.size)
    f1_thresholds = np.tile(F1_THRESHOLDS, IOU_THRESHOLDS.size)
    above = np.greater if options.thresholds == "strict" else np.greater_equal
    hit = above(pair_iou[:, None], iou_thresholds) & (
        ~gt_has_attributes[pair_gt, None] | above(pair_f1[:, None], f1_thresholds)
    )
    pair_group = group_index[pair_gt]
    matched = _greedy_by_iou(pair_group, pair_pred, pair_gt, pair_iou, hit)
    true_positives = np.zeros((groups.size, iou_thresholds.size))
    if pair_group.size:
        order = np.argsort(pair_group, kind="stable")
        present, first = np.unique(pair_group[order], return_index=True)
        true_positives[present] = np.add.reduceat(matched[order], first, axis=0)

    if options.denominator == "tp_fp_fn":
        denominator = (gt_count + pred_count)[:, None] - true_positives
    else:
        denominator = np.broadcast_to(pred_count[:, None], true_positives.shape)
    per_threshold = true_positives / np.maximum(denominator, 1)
    return float(per_threshold.mean(axis=1).sum()), int(groups.size)


def _greedy_by_iou(group, pred, gt, iou, hit) -> np.ndarray:
    """One-to-one matching per group and threshold: hits taken by descending IoU (ties by
    prediction, then ground truth order) while both sides are free. Returns (pairs, T) bool."""
    matched = np.zeros(hit.shape, bool)
    if not pred.size:
        return matched
    order = np.lexsort((gt, pred, -iou, group))
    step = np.arange(order.size) - np.searchsorted(group[order], group[order])
    # Step k takes the k-th pair of every group at once; groups share no prediction or ground truth.
    by_step = order[np.argsort(step, kind="stable")]
    bounds = np.searchsorted(np.sort(step), np.arange(step.max() + 2))
    pred_taken = np.zeros((pred.max() + 1, hit.shape[1]), bool)
    gt_taken = np.zeros((gt.max() + 1, hit.shape[1]), bool)
    for begin, end in zip(bounds[:-1], bounds[1:]):
        rows = by_step[begin:end]
        take = hit[rows] & ~pred_taken[pred[rows]] & ~gt_taken[gt[rows]]
        matched[rows] = take
        pred_taken[pred[rows]] |= take
        gt_taken[gt[rows]] |= take
    return matched

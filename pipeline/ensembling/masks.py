"""Mask helpers of one image's detections: IoU and weighted votes, both on run-length masks.

IoU runs in pycocotools' C code on the run-length masks at the original size (`mask.iou`, as the
evaluator does; it compares bounding boxes first), so no pixel is decoded and the numbers are
exact. A vote works on the members' runs too (`weighted_vote`), so neither step's cost or memory
grows with the image's pixels.
"""
from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask

from pipeline.scoring.instances import InstanceTable
from pipeline.scoring.masks import coco_rles

# A pixel's vote is a float32 sum of shares: e.g. 2 of 4 equal votes must reach 0.5 despite it.
VOTE_TOLERANCE = 1e-6


def iou_matrix(table: InstanceTable, height: int, width: int) -> np.ndarray:
    """(n, n) mask IoU of one image's detections; pairs of different classes get 0 (never computed)."""
    iou = np.zeros((len(table), len(table)))
    for class_id in np.unique(table.class_id):
        rows = np.flatnonzero(table.class_id == class_id)
        rles = coco_rles(table, rows, height, width)
        block = coco_mask.iou(rles, rles, np.zeros(rows.size, np.uint8))
        iou[np.ix_(rows, rows)] = np.asarray(block, np.float64).reshape(rows.size, rows.size)
    return iou


def weighted_vote(runs: list[tuple[np.ndarray, np.ndarray]], weights: np.ndarray, height: int,
                  threshold: float) -> str:
    """Kaggle RLE of the pixels whose weighted share of the member masks reaches `threshold`.

    Worked out on the runs, never on pixels: the runs' starts and ends cut the image (in
    column-major pixel order) into segments that every member covers whole or not at all, so a
    segment's vote is its covering members' shares, summed as a pixel's would be (member by member,
    float32), and the chosen segments, joined where they touch, are the fused mask's runs. The
    cost follows the number of runs, not the mask's pixels.
    """
    shares = np.asarray(weights, np.float64) / np.sum(weights)
    # (starts, ends, share) of the members with pixels; an empty one's share still counts in the total.
    members = [(starts, starts + lengths, share) for (starts, lengths), share in zip(runs, shares) if starts.size]
    if not members:
        return ""
    level = threshold - VOTE_TOLERANCE
    if level <= 0:  # every pixel of the members' columns has a vote of at least 0
        first = min(int(begin[0]) // height for begin, _, _ in members)
        last = max(int(end[-1] - 1) // height for _, end, _ in members)
        return f"{first * height + 1} {(last + 1 - first) * height}"
    edges = np.concatenate([np.concatenate((begin, end)) for begin, end, _ in members])
    edges.sort()
    edges = edges[np.r_[True, edges[1:] != edges[:-1]]]  # segment k: pixels edges[k] .. edges[k + 1] - 1
    votes = np.zeros(edges.size - 1, np.float32)
    for starts, ends, share in members:
        # +1 where a run starts, -1 where it ends: the running sum is 1 on the member's segments.
        step = (np.bincount(np.searchsorted(edges, starts), minlength=edges.size)
                - np.bincount(np.searchsorted(edges, ends), minlength=edges.size))
        votes += share * (np.cumsum(step)[:-1] > 0)
    chosen = np.r_[False, votes >= level, False]
    change = np.flatnonzero(chosen[1:] != chosen[:-1])  # joined runs: begin at odd, end at even changes
    starts, ends = edges[change[0::2]], edges[change[1::2]]
    pairs = np.empty(2 * starts.size, np.int64)
    pairs[0::2], pairs[1::2] = starts + 1, ends - starts
    return " ".join(map(str, pairs.tolist()))

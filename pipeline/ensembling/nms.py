"""Suppression of same-class duplicates from a precomputed mask IoU matrix (0 across classes).

`greedy_nms`: highest score first, a detection is dropped when its IoU with a kept one reaches the
threshold. `matrix_nms`: SOLOv2's matrix NMS (Wang et al. 2020, eq. 4): nothing is dropped, every
score decays by its overlap with higher-scored detections, compensated by how much those were
themselves suppressed; the caller then applies a score floor and a top-k.
"""
from __future__ import annotations

import numpy as np

from pipeline.ensembling.config import KERNELS


def score_order(score: np.ndarray) -> np.ndarray:
    """Indices by descending score; ties keep input order."""
    return np.argsort(-np.asarray(score), kind="stable")


def greedy_nms(score: np.ndarray, iou: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the kept detections, highest score first."""
    kept = []
    suppressed = np.zeros(len(score), bool)
    for i in score_order(score):
        if suppressed[i]:
            continue
        kept.append(i)
        suppressed |= iou[i] >= threshold
    return np.array(kept, np.int64)


def matrix_nms(score: np.ndarray, iou: np.ndarray, kernel: str = "gaussian", sigma: float = 2.0) -> np.ndarray:
    """Decayed scores (input order)."""
    if kernel not in KERNELS:
        raise ValueError(f"matrix NMS kernel must be one of {KERNELS}, got {kernel!r}")
    order = score_order(score)
    # Upper triangle: overlap of each detection (column) with the higher-scored ones (rows).
    overlap = np.triu(iou[np.ix_(order, order)], k=1)
    compensate = overlap.max(axis=0, initial=0.0)  # how much each row detection was itself overlapped
    if kernel == "gaussian":
        ratio = np.exp(-sigma * (overlap**2 - compensate[:, None] ** 2))
    else:
        # A row that duplicates a higher one exactly (compensate 1) decays nothing.
        ratio = (1 - overlap) / np.maximum(1 - compensate[:, None], 1e-9)
    # Only higher-scored detections decay a score; min over none is no decay.
    ratio = np.where(np.triu(np.ones_like(overlap, bool), k=1), ratio, np.inf)
    decay = np.minimum(ratio.min(axis=0, initial=np.inf), 1.0)
    decayed = np.empty(len(score))
    decayed[order] = np.asarray(score)[order] * decay
    return decayed

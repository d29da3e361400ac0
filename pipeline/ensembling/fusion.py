"""Weighted mask fusion: WBF's idea for masks.

Same-class detections of all inputs are clustered greedily, highest weighted score (file weight x
score) first: a detection joins the cluster whose leader (first member) it overlaps most, if that
IoU reaches the threshold and the cluster has no member from its file yet, else it leads a new
cluster. One member per file keeps a file's own distinct detections apart, so a single input
reproduces itself. Per cluster:
- mask: the members' binary masks (prediction files hold binary masks) averaged with weights
  file weight x score, pixels whose vote reaches `vote_threshold` (0.5: half the weight);
- score: sum(weight x score) / sum of ALL input files' weights, so an object only some inputs
  found is down-weighted;
- attributes: probabilities averaged with the same weights as the mask, `AttributesIds` the ones
  reaching `attribute_threshold`, `AttributeScores` rewritten from the average.
"""
from __future__ import annotations

import numpy as np

from pipeline.data.ontology import Ontology
from pipeline.ensembling.inputs import ImageDetections
from pipeline.ensembling.masks import iou_matrix, weighted_vote
from pipeline.ensembling.nms import score_order
from pipeline.data.prediction_rows import format_attribute_scores


def clusters(weighted_score: np.ndarray, source: np.ndarray, iou: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Member indices per cluster (leader first), clusters in leader order. `threshold` > 0, so
    detections of different classes (IoU 0 in `iou`) never meet."""
    n = len(weighted_score)
    leaders = np.zeros(n, np.int64)
    has_source = np.zeros((n, int(source.max(initial=0)) + 1), bool)  # cluster x file
    cluster_of = np.zeros(n, np.int64)
    count = 0
    for i in score_order(weighted_score):
        overlap = np.where(has_source[:count, source[i]], -1.0, iou[leaders[:count], i])
        best = int(np.argmax(overlap)) if count else -1
        if best < 0 or overlap[best] < threshold:
            best, leaders[count] = count, i
            count += 1
        has_source[best, source[i]] = True
        cluster_of[i] = best
    order = score_order(weighted_score)
    return [order[cluster_of[order] == c] for c in range(count)]


def fuse(detections: ImageDetections, total_weight: float, ontology: Ontology, iou_threshold: float = 0.5,
         vote_threshold: float = 0.5, attribute_threshold: float = 0.5) -> list[tuple]:
    """Output rows (ImageId, EncodedPixels, ClassId, AttributesIds, Score, AttributeScores), one per
    cluster whose fused mask is not empty."""
    table = detections.table
    weighted = detections.weight * table.score
    iou = iou_matrix(table, detections.height, detections.width)
    rows = []
    for members in clusters(weighted, detections.source, iou, iou_threshold):
        if len(members) == 1:
            encoded, probs = detections.encoded[members[0]], detections.attribute_probs[members[0]]
        else:
            # Members that all score 0 count equally.
            shares = weighted[members] if weighted[members].sum() > 0 else np.ones(len(members))
            encoded = weighted_vote([table.runs[m] for m in members], shares, detections.height, vote_threshold)
            probs = np.average(detections.attribute_probs[members], axis=0, weights=shares)
        if encoded:
            rows.append((detections.image_id, encoded, int(table.class_id[members[0]]),
                         ",".join(map(str, ontology.vector_to_attributes(probs, attribute_threshold))),
                         float(weighted[members].sum() / total_weight), format_attribute_scores(probs, ontology)))
    return rows

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
from pycocotools import mask as coco_mask

from pipeline.data.ontology import Ontology
from pipeline.ensembling.inputs import ImageDetections
from pipeline.ensembling.masks import weighted_vote
from pipeline.ensembling.nms import score_order
from pipeline.data.prediction_rows import format_attribute_scores
from pipeline.scoring.instances import InstanceTable
from pipeline.scoring.masks import coco_rles


def clusters(weighted_score: np.ndarray, source: np.ndarray, table: InstanceTable, height: int, width: int,
             threshold: float) -> list[np.ndarray]:
    """Member indices per cluster (leader first), clusters in leader order. Only detections of one
    class meet (`threshold` > 0), and a detection's mask IoU is computed with its class's current
    leaders only, never with every detection: many inputs (a test ensemble of 15 files) make
    large classes of near-duplicates whose leaders are few."""
    order = score_order(weighted_score)
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    found = []  # (leader's rank, members)
    for class_id in np.unique(table.class_id):
        rows = order[table.class_id[order] == class_id]  # the class's detections, best first
        rles = coco_rles(table, rows, height, width)
        leaders, members, sources = [], [], []  # per cluster: its leader (position in rows), members, files
        for k, i in enumerate(rows):
            best = -1
            if leaders:
                overlap = np.asarray(coco_mask.iou([rles[k]], [rles[j] for j in leaders], np.zeros(len(leaders), np.uint8)),
                                     np.float64).ravel()
                overlap[[source[i] in taken for taken in sources]] = -1.0  # one member per file
                best = int(np.argmax(overlap))
                best = best if overlap[best] >= threshold else -1
            if best < 0:  # it leads a new cluster
                leaders.append(k)
                members.append([])
                sources.append(set())
                best = len(leaders) - 1
            members[best].append(i)
            sources[best].add(source[i])
        found += [(rank[rows[leader]], np.array(cluster, np.int64)) for leader, cluster in zip(leaders, members)]
    return [cluster for _, cluster in sorted(found, key=lambda pair: pair[0])]


def fuse(detections: ImageDetections, total_weight: float, ontology: Ontology, iou_threshold: float = 0.5,
         vote_threshold: float = 0.5, attribute_threshold: float = 0.5) -> list[tuple]:
    """Output rows (ImageId, EncodedPixels, ClassId, AttributesIds, Score, AttributeScores), one per
    cluster whose fused mask is not empty."""
    table = detections.table
    weighted = detections.weight * table.score
    rows = []
    for members in clusters(weighted, detections.source, table, detections.height, detections.width, iou_threshold):
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

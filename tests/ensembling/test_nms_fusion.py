"""Greedy mask NMS, matrix NMS and weighted mask fusion on hand-made masks."""
import numpy as np
import pytest

from pipeline.data import rle
from pipeline.ensembling.config import EnsembleConfig as Settings
from pipeline.ensembling.ensemble import ensemble_image
from pipeline.ensembling.fusion import fuse
from pipeline.ensembling.masks import iou_matrix
from pipeline.ensembling.nms import matrix_nms

from ensembling_cases import LABELS, SIZE, box, detections

A = box(0, 0, 20, 20)
A_SHIFTED = box(0, 2, 20, 20)   # IoU with A: 360 / 440
FAR = box(25, 25, 10, 10)


def test_nms_suppresses_same_class_duplicates_and_keeps_other_classes(tmp_path):
    found, _ = detections(tmp_path, [("a", A, 1, "", 0.9), ("a", A_SHIFTED, 1, "115", 0.8),
                                     ("a", A, 2, "", 0.7), ("a", FAR, 1, "", 0.6)])
    rows = ensemble_image(found, 1.0, 1.0, LABELS, Settings(method="nms", iou_threshold=0.5))
    assert [(r[2], r[4]) for r in rows] == [(1, 0.9), (2, 0.7), (1, 0.6)]
    assert rows[0][1] == rle.encode(A) and rows[2][1] == rle.encode(FAR)
    # Above the pair's IoU nothing is a duplicate.
    rows = ensemble_image(found, 1.0, 1.0, LABELS, Settings(method="nms", iou_threshold=0.9))
    assert len(rows) == 4


def test_nms_across_inputs_scales_scores_by_weight(tmp_path):
    found, _ = detections(tmp_path, [("a", A, 1, "", 0.9)], [("a", A_SHIFTED, 1, "", 0.8)], weights=[1, 2])
    rows = ensemble_image(found, 3.0, 2.0, LABELS, Settings(method="nms"))
    assert [(r[1], r[4]) for r in rows] == [(rle.encode(A_SHIFTED), 0.8)]  # 0.9 * 1/2 < 0.8 * 2/2


def test_matrix_nms_decays_overlapping_scores():
    iou = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    score = np.array([0.9, 0.8, 0.7])
    decayed = matrix_nms(score, iou, "gaussian", 2.0)
    assert decayed == pytest.approx([0.9, 0.8 * np.exp(-2 * 0.64), 0.7])
    assert matrix_nms(score, iou, "linear") == pytest.approx([0.9, 0.8 * 0.2, 0.7])
    # A third detection overlapping only the suppressed one is compensated: it decays less.
    iou3 = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.5], [0.0, 0.5, 1.0]])
    decayed = matrix_nms(score, iou3, "linear")
    assert decayed[2] == pytest.approx(0.7 * min(1.0, (1 - 0.5) / (1 - 0.8)))


def test_matrix_nms_stage_keeps_order_and_floor(tmp_path):
    found, _ = detections(tmp_path, [("a", A, 1, "", 0.9), ("a", A_SHIFTED, 1, "", 0.8), ("a", FAR, 3, "", 0.7)])
    rows = ensemble_image(found, 1.0, 1.0, LABELS, Settings(method="matrix_nms", min_score=0.3))
    iou = 360 / 440
    assert [r[4] for r in rows] == pytest.approx([0.9, 0.7])  # 0.8 * exp(-2 iou^2) = 0.21 < 0.3
    rows = ensemble_image(found, 1.0, 1.0, LABELS, Settings(method="matrix_nms"))
    assert [r[4] for r in rows] == pytest.approx([0.9, 0.7, 0.8 * np.exp(-2 * iou**2)])


def test_iou_matrix_is_zero_across_classes(tmp_path):
    found, _ = detections(tmp_path, [("a", A, 1, "", 0.9), ("a", A_SHIFTED, 1, "", 0.8), ("a", A, 2, "", 0.7)])
    iou = iou_matrix(found.table, *SIZE)
    assert iou[0, 1] == pytest.approx(360 / 440) and iou[0, 2] == 0 and iou[1, 2] == 0


def test_fusion_averages_masks_scores_and_attributes_with_weights(tmp_path):
    left, right = box(0, 0, 20, 20), box(0, 5, 20, 20)  # IoU 300 / 500
    found, _ = detections(tmp_path, [("a", left, 4, "115", 0.8, "115:1.000")],
                          [("a", right, 4, "136", 0.4, "115:0.500 136:0.900")], weights=[1, 3])
    rows = fuse(found, 4.0, LABELS)
    assert len(rows) == 1
    image_id, encoded, class_id, attributes, score, attribute_scores = rows[0]
    # Member weights w x score: 0.8 and 1.2 (shares 0.4 / 0.6): pixels of `right` reach half.
    assert rle.decode(encoded, *SIZE).tolist() == right.tolist()
    assert score == pytest.approx((0.8 + 1.2) / 4)
    assert attributes == "115,136"  # 0.4 * 1 + 0.6 * 0.5 = 0.7; 0.6 * 0.9 = 0.54
    assert attribute_scores == "115:0.700 136:0.540"
    # Equal weights and scores: half the weight is enough, so the union; a higher vote: the overlap.
    found, _ = detections(tmp_path, [("a", left, 4, "", 0.5)], [("a", right, 4, "", 0.5)])
    assert rle.decode(fuse(found, 2.0, LABELS)[0][1], *SIZE).tolist() == (left | right).tolist()
    assert rle.decode(fuse(found, 2.0, LABELS, vote_threshold=0.9)[0][1], *SIZE).tolist() == (left & right).tolist()


def test_fusion_keeps_classes_and_unmatched_detections_apart(tmp_path):
    found, _ = detections(tmp_path, [("a", A, 1, "", 0.9), ("a", FAR, 1, "", 0.5)], [("a", A, 2, "", 0.6)])
    rows = sorted(fuse(found, 2.0, LABELS), key=lambda r: -r[4])
    assert [(r[2], r[4]) for r in rows] == [(1, 0.45), (2, 0.3), (1, 0.25)]  # each down-weighted by 1/2


def test_fusion_of_a_single_input_reproduces_it(tmp_path):
    rows = [("a", A, 1, "115", 0.9, "115:0.800"), ("a", A_SHIFTED, 1, "", 0.8, ""),  # own duplicates stay apart
            ("a", FAR, 7, "136,143", 0.3, "")]  # no AttributeScores: AttributesIds kept
    found, _ = detections(tmp_path, rows, weights=[2.0])
    fused = fuse(found, 2.0, LABELS)
    assert [(r[1], r[2], r[3], r[4]) for r in fused] == [(rle.encode(m), c, a, s) for _, m, c, a, s, *_ in rows]

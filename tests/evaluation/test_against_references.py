"""The evaluator against pycocotools' COCOeval and the official FPEval, number for number."""
import json

import numpy as np
import pandas as pd
import pytest

from pipeline.data import ontology as ontology_lib
from pipeline.data import rle
from pipeline.data.annotations import ImageRecord, Instance, read_annotations
from pipeline.data.ontology import GROUPS
from pipeline.evaluation import reference
from pipeline.evaluation.reference_runners import run_cocoeval, run_fpeval
from pipeline.scoring.evaluator import evaluate
from pipeline.scoring.predictions import predictions_table, read_predictions

from random_cases import ONTOLOGY, random_case

TOLERANCE = 1e-9
AREAS = ("all", "small", "medium", "large")


def _both(records, frame, ontology):
    predictions = predictions_table(frame, records, ontology)
    ours = evaluate(records, predictions, ontology)
    coco = run_cocoeval(*reference.coco_inputs(records, predictions, ontology))
    fpeval = run_fpeval(*reference.coco_inputs(records, predictions, ontology))
    return ours, coco, fpeval


def _assert_matches_cocoeval(ours, coco, num_classes):
    expected = list(coco.stats[:6]) + [coco.stats[8]]  # AP, AP50, AP75, APs, APm, APl, AR@100
    actual = [ours.ap_iou(), ours.ap_iou(iou=0), ours.ap_iou(iou=5)] + [ours.ap_iou(a) for a in AREAS[1:]]
    actual.append(ours.metrics()["ar_iou_100"])
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE)
    # Every precision entry, not only the means: (IoU thr, recall point, class, area, maxDets=100).
    for a, area in enumerate(AREAS):
        np.testing.assert_allclose(ours.iou_precision[area], coco.eval["precision"][:, :, :, a, 2], rtol=0, atol=TOLERANCE)
    for k in range(num_classes):
        expected = coco.eval["precision"][:, :, k, 0, 2]
        expected = float(np.mean(expected[expected > -1])) if (expected > -1).any() else -1.0
        assert ours.ap_iou(classes=[k]) == pytest.approx(expected, abs=TOLERANCE)


def _assert_matches_fpeval(ours, fpeval, num_classes):
    keys = ("AP", "AP_IOU50", "AP_IOU75", "APs", "APm", "APl")
    actual = [ours.ap_iou_f1(), ours.ap_iou_f1(iou=0), ours.ap_iou_f1(iou=5)] + [ours.ap_iou_f1(a) for a in AREAS[1:]]
    np.testing.assert_allclose(actual, [fpeval.results[k] for k in keys], rtol=0, atol=TOLERANCE)
    for index, group in enumerate(GROUPS):
        assert ours.ap_iou_f1(classes=group) == pytest.approx(fpeval._summarize("ap", catSuperIdx=index), abs=TOLERANCE)
    for k in range(num_classes):
        assert ours.ap_iou_f1(classes=[k]) == pytest.approx(fpeval._summarize("ap", catId=k), abs=TOLERANCE)


@pytest.mark.parametrize("seed", range(40))
def test_random_cases_match_both_references(seed):
    records, frame = random_case(seed, ONTOLOGY)
    ours, coco, fpeval = _both(records, frame, ONTOLOGY)
    _assert_matches_cocoeval(ours, coco, ONTOLOGY.num_classes)
    _assert_matches_fpeval(ours, fpeval, ONTOLOGY.num_classes)


def test_only_the_100_best_detections_per_image_and_class_count():
    """130 predictions of one class on one image, many with tied scores, around 3 ground truths."""
    rng = np.random.default_rng(7)
    height, width = 60, 50
    masks = []
    for top, left in ((0, 0), (5, 5), (30, 20)):
        mask = np.zeros((height, width), np.uint8)
        mask[top : top + 25, left : left + 25] = 1
        masks.append(mask)
    record = ImageRecord("crowded", height, width, [Instance(31, rle.encode(m), (), i + 2) for i, m in enumerate(masks)])
    rows = []
    for i in range(130):
        mask = np.roll(masks[i % 3], int(rng.integers(-3, 4)), axis=int(rng.integers(0, 2)))
        rows.append(("crowded", rle.encode(mask), 31, "", float(rng.choice([0.2, 0.4, rng.random()]))))
    frame = pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "ClassId", "AttributesIds", "Score"])
    ours, coco, fpeval = _both([record], frame, ONTOLOGY)
    _assert_matches_cocoeval(ours, coco, ONTOLOGY.num_classes)
    _assert_matches_fpeval(ours, fpeval, ONTOLOGY.num_classes)


def test_real_sample_reproduces_the_reference_metrics(fashionpedia_sample):
    ontology = ontology_lib.load(fashionpedia_sample / "label_descriptions.json")
    records, _ = read_annotations(fashionpedia_sample / "train.csv", ontology)
    predictions = read_predictions(fashionpedia_sample / "predictions.csv", records, ontology)
    metrics = evaluate(records, predictions, ontology).metrics()
    expected = json.loads((fashionpedia_sample / "reference_metrics.json").read_text())
    for key in ("ap_iou_f1", "ap_iou", "ap_iou_f1_50", "ap_iou_50", "ap_iou_75"):
        assert metrics[key] == pytest.approx(expected[key], abs=TOLERANCE), key

"""The reconstructed Kaggle score against a literal, loop-by-loop reading of METRICS.md §3."""
import itertools

import numpy as np
import pandas as pd
import pytest

from pipeline.data import rle
from pipeline.data.annotations import ImageRecord, Instance
from pipeline.scoring.evaluator import evaluate
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.scoring.predictions import predictions_table

from random_cases import ONTOLOGY, random_case

THRESHOLDS = np.linspace(0.5, 0.95, 10)
OPTIONS = [KaggleOptions(d, t) for d, t in itertools.product(("tp_fp_fn", "tp_fp"), ("strict", "inclusive"))]


def literal_kaggle(records, frame, options):
    above = (lambda a, b: a > b) if options.thresholds == "strict" else (lambda a, b: a >= b)
    entries = []
    for record in records:
        rows = frame[frame.ImageId == record.image_id]
        gts = [(i.class_id, rle.decode(i.rle, record.height, record.width), set(i.attributes)) for i in record.instances]
        preds = [(int(r.ClassId), rle.decode(r.EncodedPixels, record.height, record.width),
                  {int(a) for a in str(r.AttributesIds).split(",") if a}) for r in rows.itertuples()]
        classes = {c for c, _, _ in gts} | {c for c, _, _ in preds}
        if not classes:
            entries.append(1.0)
        for c in sorted(classes):
            g_list = [g for g in gts if g[0] == c]
            p_list = [p for p in preds if p[0] == c]
            scores = []
            for t_iou, t_f1 in itertools.product(THRESHOLDS, THRESHOLDS):
                hits = []
                for pi, (_, p_mask, p_attr) in enumerate(p_list):
                    for gi, (_, g_mask, g_attr) in enumerate(g_list):
                        union = np.logical_or(p_mask, g_mask).sum()
                        iou = np.logical_and(p_mask, g_mask).sum() / union if union else 0.0
                        f1 = 2 * len(p_attr & g_attr) / (len(p_attr) + len(g_attr)) if g_attr else None
                        if above(iou, t_iou) and (f1 is None or above(f1, t_f1)):
                            hits.append((-iou, pi, gi))
                used_p, used_g, tp = set(), set(), 0
                for _, pi, gi in sorted(hits):
                    if pi not in used_p and gi not in used_g:
                        used_p.add(pi), used_g.add(gi)
                        tp += 1
                fp, fn = len(p_list) - tp, len(g_list) - tp
                denominator = tp + fp + fn if options.denominator == "tp_fp_fn" else tp + fp
                scores.append(tp / denominator if denominator else 0.0)
            entries.append(np.mean(scores))
    return float(np.mean(entries))


def _kaggle(records, frame, ontology, options=KaggleOptions()):
    return evaluate(records, predictions_table(frame, records, ontology), ontology, options).kaggle


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"{o.denominator}-{o.thresholds}")
def test_random_cases_equal_the_literal_reading(seed, options):
    records, frame = random_case(seed, ONTOLOGY, images=3)
    assert _kaggle(records, frame, ONTOLOGY, options) == pytest.approx(literal_kaggle(records, frame, options), abs=1e-12)


def _square(top, left, size=10, height=20, width=40):
    mask = np.zeros((height, width), np.uint8)
    mask[top : top + size, left : left + size] = 1
    return rle.encode(mask)


def _frame(rows):
    return pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "ClassId", "AttributesIds"])


def test_hand_cases():
    gt = [ImageRecord("a", 20, 40, [Instance(31, _square(0, 0), (1, 2), 2), Instance(23, _square(0, 20), (), 3)])]
    perfect = _frame([("a", _square(0, 0), 31, "1,2"), ("a", _square(0, 20), 23, "")])
    assert _kaggle(gt, perfect, ONTOLOGY) == 1.0
    # The shoe shifted by 3 px: IoU 70/130 ~ 0.54 passes t_iou 0.50 only, 1 of 10.
    shifted = _frame([("a", _square(0, 0), 31, "1,2"), ("a", _square(0, 20 + 3), 23, "")])
    iou = 70 / 130
    assert _kaggle(gt, shifted, ONTOLOGY) == pytest.approx((1 + np.mean(THRESHOLDS < iou)) / 2)
    # A missed ground truth: TP+FP+FN counts it, TP+FP does not.
    missed = _frame([("a", _square(0, 0), 31, "1,2")])
    assert _kaggle(gt, missed, ONTOLOGY) == 0.5
    assert _kaggle(gt, missed, ONTOLOGY, KaggleOptions(denominator="tp_fp")) == 0.5  # the shoe class scores 0/0 -> 0
    extra = _frame([("a", _square(0, 0), 31, "1,2"), ("a", _square(10, 0), 31, "1,2"), ("a", _square(0, 20), 23, "")])
    assert _kaggle(gt, extra, ONTOLOGY) == pytest.approx((0.5 + 1) / 2)
    # Attributes: set-F1 {1,2} vs {1} = 2/3 passes t_f1 0.50..0.65 (4 of 10).
    partial = _frame([("a", _square(0, 0), 31, "1"), ("a", _square(0, 20), 23, "")])
    assert _kaggle(gt, partial, ONTOLOGY) == pytest.approx((0.4 + 1) / 2)


def test_threshold_rule_decides_an_iou_of_exactly_one_half():
    gt = [ImageRecord("a", 20, 40, [Instance(23, _square(0, 0, size=10), (), 2)])]
    half = _frame([("a", rle.encode(np.pad(np.ones((10, 5), np.uint8), ((0, 10), (0, 35)))), 23, "")])  # IoU 50/100
    assert _kaggle(gt, half, ONTOLOGY, KaggleOptions(thresholds="strict")) == 0.0
    assert _kaggle(gt, half, ONTOLOGY, KaggleOptions(thresholds="inclusive")) == pytest.approx(0.1)


def test_an_image_with_nothing_on_either_side_scores_one():
    records = [ImageRecord("a", 20, 40, [Instance(23, _square(0, 0), (), 2)]), ImageRecord("empty", 20, 40)]
    assert _kaggle(records, _frame([("a", _square(0, 0), 23, "")]), ONTOLOGY) == 1.0
    assert _kaggle(records, _frame([]), ONTOLOGY) == 0.5


def test_options_are_checked():
    with pytest.raises(ValueError, match="denominator"):
        KaggleOptions(denominator="tp")

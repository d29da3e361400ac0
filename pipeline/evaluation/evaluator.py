"""Score predictions against ground truth: the three numbers of METRICS.md and their breakdowns.

`evaluate` returns an `Evaluation` (precision arrays kept for curves); `Evaluation.metrics()` is
the JSON the `evaluate` command writes. `evaluate_frames` is the in-memory entry point for
training code (a predictions DataFrame, e.g. one fold's out-of-fold predictions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.data.annotations import ImageRecord
from pipeline.data.ontology import CATEGORIES_WITH_ATTRIBUTES, GROUPS, Ontology
from pipeline.evaluation import coco_ap
from pipeline.evaluation.attributes import attribute_matrix, fpeval_f1, set_f1
from pipeline.evaluation.instances import InstanceTable, ground_truth_table
from pipeline.evaluation.kaggle_score import KaggleOptions, kaggle_score
from pipeline.evaluation.masks import Pairs, overlapping_pairs
from pipeline.evaluation.predictions import predictions_table

AREAS = tuple(coco_ap.AREA_RANGES)
IOU_50, IOU_75 = 0, 5  # positions of 0.50 and 0.75 in the IoU thresholds


@dataclass
class Evaluation:
    ontology: Ontology
    kaggle: float
    kaggle_options: KaggleOptions
    images: int
    gt_per_class: np.ndarray
    pred_per_class: np.ndarray
    # None when the predictions have no scores. Per area range:
    iou_precision: dict[str, np.ndarray] | None = None  # (IoU thr, recall pts, classes)
    iou_recall: dict[str, np.ndarray] | None = None     # (IoU thr, classes)
    f1_precision: dict[str, np.ndarray] | None = None   # (IoU thr, F1 thr, recall pts, classes)

    @property
    def has_ap(self) -> bool:
        return self.iou_precision is not None

    def ap_iou(self, area: str = "all", iou: int | None = None, classes=None) -> float:
        """COCOeval's AP over `classes` (default all), at one IoU threshold position or all."""
        precision = self.iou_precision[area][_pick(iou)]
        return coco_ap.mean_defined(precision[..., _classes(classes, self.ontology)])

    def ap_iou_f1(self, area: str = "all", iou: int | None = None, classes=None) -> float:
        """FPEval's AP: the pool of (IoU, F1) slices of classes with attributes and IoU slices of the rest."""
        pool = []
        for k in _classes(classes, self.ontology):
            if k in CATEGORIES_WITH_ATTRIBUTES:
                pool.append(self.f1_precision[area][_pick(iou), :, :, k].ravel())
            else:
                pool.append(self.iou_precision[area][_pick(iou), :, k].ravel())
        return coco_ap.mean_defined(np.concatenate(pool))

    def metrics(self) -> dict:
        """The evaluator's JSON: headline scores, breakdowns; -1 where undefined (no ground truth),
        null where not computable (predictions without Score)."""
        result = {
            "ap_iou": None, "ap_iou_f1": None, "ap_iou_f1_50": None, "kaggle": self.kaggle,
            "images": self.images,
            "gt_instances": int(self.gt_per_class.sum()),
            "predictions": int(self.pred_per_class.sum()),
            "kaggle_options": {"denominator": self.kaggle_options.denominator,
                               "thresholds": self.kaggle_options.thresholds},
        }
        if not self.has_ap:
            result["ap_note"] = "predictions have no Score column: AP needs confidences"
            return result
        for name, score in (("ap_iou", self.ap_iou), ("ap_iou_f1", self.ap_iou_f1)):
            result[name] = score()
            result[f"{name}_50"] = score(iou=IOU_50)
            result[f"{name}_75"] = score(iou=IOU_75)
            for area in AREAS[1:]:
                result[f"{name}_{area}"] = score(area)
        result["ar_iou_100"] = coco_ap.mean_defined(self.iou_recall["all"])
        result["supercategories"] = {
            group: {"ap_iou": self.ap_iou(classes=group), "ap_iou_f1": self.ap_iou_f1(classes=group)}
            for group in GROUPS
        }
        result["categories"] = {
            c.name: {
                "id": c.id,
                "gt": int(self.gt_per_class[c.id]),
                "pred": int(self.pred_per_class[c.id]),
                "ap_iou": self.ap_iou(classes=[c.id]),
                "ap_iou_f1": self.ap_iou_f1(classes=[c.id]),
            }
            for c in self.ontology.categories
        }
        return result

    def pr_curve(self, classes=None) -> np.ndarray:
        """AP_IoU's precision at the 101 recall points, averaged over the IoU thresholds and the
        classes with ground truth, so that its mean is `ap_iou(classes=...)`; NaN if none has any."""
        precision = self.iou_precision["all"][..., _classes(classes, self.ontology)]
        by_recall = np.moveaxis(precision, 1, 0).reshape(precision.shape[1], -1)
        defined = by_recall > -1
        with np.errstate(invalid="ignore"):
            return np.where(defined, by_recall, 0.0).sum(axis=1) / defined.sum(axis=1)


def _pick(iou: int | None):
    return slice(None) if iou is None else slice(iou, iou + 1)


def _classes(classes, ontology: Ontology) -> list[int]:
    """All classes, a supercategory group's, or the given ids."""
    if classes is None:
        return list(range(ontology.num_classes))
    if isinstance(classes, str):
        return [c.id for c in ontology.categories if ontology.category_group(c.id) == classes]
    return list(classes)


def evaluate(
    records: list[ImageRecord], predictions: InstanceTable, ontology: Ontology,
    kaggle_options: KaggleOptions = KaggleOptions(), gt: InstanceTable | None = None, pairs: Pairs | None = None,
) -> Evaluation:
    """Score validated predictions (rows indexing `records`) against the records' instances.

    `gt` (`ground_truth_table(records)`) and `pairs` (`overlapping_pairs` at IoU 0.5) may be passed
    in by a caller that scores many subsets of one predictions table (threshold tuning).
    """
    gt = ground_truth_table(records) if gt is None else gt
    if pairs is None:
        # IoU >= 0.5 is the loosest threshold of every score: no other pair can ever match.
        pairs = overlapping_pairs(gt, predictions, [(r.height, r.width) for r in records], coco_ap.IOU_THRESHOLDS[0])
    gt_attributes = attribute_matrix(gt.attributes, ontology)
    pred_attributes = attribute_matrix(predictions.attributes, ontology)
    num_classes = ontology.num_classes
    pred_group = predictions.image * num_classes + predictions.class_id
    evaluation = Evaluation(
        ontology=ontology,
        kaggle=kaggle_score(
            gt.image * num_classes + gt.class_id, pred_group, pairs.pred, pairs.gt, pairs.iou,
            set_f1(gt_attributes[pairs.gt], pred_attributes[pairs.pred]), gt_attributes.any(axis=1),
            empty_images=len(records) - np.union1d(gt.image, predictions.image).size, options=kaggle_options,
        ),
        kaggle_options=kaggle_options,
        images=len(records),
        gt_per_class=np.bincount(gt.class_id, minlength=num_classes),
        pred_per_class=np.bincount(predictions.class_id, minlength=num_classes),
    )
    if predictions.score is not None:
        rows, rank = coco_ap.top_detections(predictions.image, pred_group, predictions.score)
        detection_of = np.full(len(predictions), -1)
        detection_of[rows] = np.arange(rows.size)
        pairs = pairs.select(detection_of[pairs.pred] >= 0)
        # F1 of every pair at once; only the pairs of categories with attributes will use it.
        f1 = fpeval_f1(gt_attributes[pairs.gt], pred_attributes[pairs.pred])
        candidates = coco_ap.Candidates(detection_of[pairs.pred], pairs.gt, pairs.iou, f1)
        (evaluation.iou_precision, evaluation.iou_recall, evaluation.f1_precision) = _average_precision(
            candidates, rank, predictions.class_id[rows], predictions.area[rows], gt, num_classes
        )
    return evaluation


def _average_precision(candidates: coco_ap.Candidates, rank, dt_class, dt_area, gt: InstanceTable, num_classes: int):
    """Per area range: AP_IoU precision and recall, and AP_IoU+F1 precision of the categories with attributes."""
    iou_candidates = coco_ap.Candidates(candidates.dt, candidates.gt, candidates.iou, np.ones(candidates.iou.size))
    # AP_IoU+F1 differs from AP_IoU only on categories with attributes: their detections alone.
    attribute_classes = np.array(CATEGORIES_WITH_ATTRIBUTES)
    with_attributes = np.flatnonzero(np.isin(dt_class, attribute_classes))
    renumbered = np.full(dt_class.size, -1)
    renumbered[with_attributes] = np.arange(with_attributes.size)
    keep = (renumbered[candidates.dt] >= 0) & (candidates.f1 >= coco_ap.F1_THRESHOLDS[0])
    f1_candidates = coco_ap.Candidates(
        renumbered[candidates.dt[keep]], candidates.gt[keep], candidates.iou[keep], candidates.f1[keep]
    )
    pair_iou = np.repeat(coco_ap.IOU_THRESHOLDS, coco_ap.F1_THRESHOLDS.size)
    pair_f1 = np.tile(coco_ap.F1_THRESHOLDS, coco_ap.IOU_THRESHOLDS.size)
    no_f1 = np.zeros(coco_ap.IOU_THRESHOLDS.size)

    iou_precision, iou_recall, f1_precision = {}, {}, {}
    for area, (low, high) in coco_ap.AREA_RANGES.items():
        gt_ignored = (gt.area < low) | (gt.area > high)
        dt_outside = (dt_area < low) | (dt_area > high)
        iou_precision[area], iou_recall[area] = _accumulate(
            coco_ap.match(iou_candidates, rank, gt_ignored, coco_ap.IOU_THRESHOLDS, no_f1),
            dt_class, dt_outside, gt, gt_ignored, np.arange(num_classes), num_classes,
        )
        precision, _ = _accumulate(
            coco_ap.match(f1_candidates, rank[with_attributes], gt_ignored, pair_iou, pair_f1),
            dt_class[with_attributes], dt_outside[with_attributes], gt, gt_ignored, attribute_classes, num_classes,
        )
        f1_precision[area] = precision.reshape(coco_ap.IOU_THRESHOLDS.size, coco_ap.F1_THRESHOLDS.size, *precision.shape[1:])
    return iou_precision, iou_recall, f1_precision


def _accumulate(matched, dt_class, dt_outside, gt, gt_ignored, classes, num_classes):
    """Detections matched to an ignored ground truth, or unmatched outside the area range, do not count."""
    hit = matched >= 0
    ignored = np.where(hit, gt_ignored[np.maximum(matched, 0)], dt_outside[:, None])
    return coco_ap.precision_recall(dt_class, hit, ignored, gt.class_id, gt_ignored, classes, num_classes)


def evaluate_frames(
    records: list[ImageRecord], predictions: pd.DataFrame, ontology: Ontology,
    kaggle_options: KaggleOptions = KaggleOptions(), source: str = "<predictions>",
) -> dict:
    """Metrics dict of a predictions DataFrame (submission columns, optional Score) against records."""
    return evaluate(records, predictions_table(predictions, records, ontology, source), ontology, kaggle_options).metrics()

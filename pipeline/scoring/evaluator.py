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
from pipeline.scoring import coco_ap
from pipeline.scoring.attributes import attribute_matrix, fpeval_f1, set_f1
from pipeline.scoring.instances import InstanceTable, ground_truth_table
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.scoring.kaggle_score import kaggle_sums
from pipeline.scoring.masks import Pairs, overlapping_pairs
from pipeline.scoring.predictions import predictions_table

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
    accumulator = Accumulator(ontology, kaggle_options)
    accumulator.add(records, predictions, gt=gt, pairs=pairs)
    return accumulator.result()


@dataclass
class Outcomes:
    """Some images' top detections (the 100 best per image and class) and their outcome at every
    threshold of every area range: matched a ground truth (`hit`), and not counted (`ignored`:
    matched an area-ignored ground truth, or unmatched outside the range), packed 8 thresholds a
    byte. Matching is per image, so outcomes of separate images are final and only the ranking
    (`precision_recall`) needs them all."""
    score: np.ndarray                 # float64
    image: np.ndarray                 # int32 image index (ground-truth order): the first tie-break
    position: np.ndarray              # int32 file order: the second
    class_id: np.ndarray              # int16
    hit: dict[str, np.ndarray]        # area -> (detections, packed IoU thresholds)
    ignored: dict[str, np.ndarray]
    with_attributes: np.ndarray       # bool: a category with attributes (AP_IoU+F1 slices)
    f1_hit: dict[str, np.ndarray]     # area -> (detections with attributes, packed (IoU, F1) pairs)
    f1_ignored: dict[str, np.ndarray]


class Accumulator:
    """The evaluation of images added a few at a time (`add`), so predictions never need to be in
    memory at once: the Kaggle score's sums, counts and the detections' `Outcomes` (tens of bytes
    each) are kept, masks and attributes are not. `merge` pools accumulators of disjoint images."""

    def __init__(self, ontology: Ontology, kaggle_options: KaggleOptions = KaggleOptions()):
        self.ontology, self.kaggle_options = ontology, kaggle_options
        self.kaggle_total, self.kaggle_groups, self.empty_images, self.images = 0.0, 0, 0, 0
        self.gt_per_class = np.zeros(ontology.num_classes, np.int64)
        self.pred_per_class = np.zeros(ontology.num_classes, np.int64)
        self.regular = {area: np.zeros(ontology.num_classes, np.int64) for area in AREAS}
        self.outcomes: list[Outcomes] = []
        self.has_ap = True

    def add(self, records: list[ImageRecord], predictions: InstanceTable, image_index: np.ndarray | None = None,
            position: np.ndarray | None = None, gt: InstanceTable | None = None, pairs: Pairs | None = None) -> None:
        """Score `records` (images not added before) with their predictions. `image_index`: each
        record's index in the whole ground truth (default 0..), `position`: each prediction's place
        in the whole file (default 0..), both only to break score ties as one call on everything would."""
        gt = ground_truth_table(records) if gt is None else gt
        if pairs is None:
            # IoU >= 0.5 is the loosest threshold of every score: no other pair can ever match.
            pairs = overlapping_pairs(gt, predictions, [(r.height, r.width) for r in records],
                                      coco_ap.IOU_THRESHOLDS[0])
        gt_attributes = attribute_matrix(gt.attributes, self.ontology)
        pred_attributes = attribute_matrix(predictions.attributes, self.ontology)
        num_classes = self.ontology.num_classes
        pred_group = predictions.image * num_classes + predictions.class_id
        total, groups = kaggle_sums(gt.image * num_classes + gt.class_id, pred_group, pairs.pred, pairs.gt, pairs.iou,
                                    set_f1(gt_attributes[pairs.gt], pred_attributes[pairs.pred]),
                                    gt_attributes.any(axis=1), self.kaggle_options)
        self.kaggle_total += total
        self.kaggle_groups += groups
        self.empty_images += len(records) - np.union1d(gt.image, predictions.image).size
        self.images += len(records)
        self.gt_per_class += np.bincount(gt.class_id, minlength=num_classes)
        self.pred_per_class += np.bincount(predictions.class_id, minlength=num_classes)
        for area, (low, high) in coco_ap.AREA_RANGES.items():
            self.regular[area] += np.bincount(gt.class_id[(gt.area >= low) & (gt.area <= high)], minlength=num_classes)
        if predictions.score is None:
            self.has_ap = False
        if not self.has_ap:
            return
        image_index = np.arange(len(records)) if image_index is None else np.asarray(image_index)
        position = np.arange(len(predictions)) if position is None else np.asarray(position)
        rows, rank = coco_ap.top_detections(predictions.image, pred_group, predictions.score)
        detection_of = np.full(len(predictions), -1)
        detection_of[rows] = np.arange(rows.size)
        pairs = pairs.select(detection_of[pairs.pred] >= 0)
        # F1 of every pair at once; only the pairs of categories with attributes will use it.
        f1 = fpeval_f1(gt_attributes[pairs.gt], pred_attributes[pairs.pred])
        candidates = coco_ap.Candidates(detection_of[pairs.pred], pairs.gt, pairs.iou, f1)
        self.outcomes.append(_outcomes(candidates, rank, predictions.class_id[rows], predictions.area[rows], gt,
                                       predictions.score[rows], image_index[predictions.image[rows]], position[rows]))

    @classmethod
    def merge(cls, accumulators: list["Accumulator"]) -> "Accumulator":
        """One accumulator of the images of all (their images must be disjoint)."""
        pooled = cls(accumulators[0].ontology, accumulators[0].kaggle_options)
        for other in accumulators:
            pooled.kaggle_total += other.kaggle_total
            pooled.kaggle_groups += other.kaggle_groups
            pooled.empty_images += other.empty_images
            pooled.images += other.images
            pooled.gt_per_class += other.gt_per_class
            pooled.pred_per_class += other.pred_per_class
            for area in AREAS:
                pooled.regular[area] += other.regular[area]
            pooled.outcomes += other.outcomes
            pooled.has_ap &= other.has_ap
        return pooled

    def result(self) -> Evaluation:
        denominator = self.kaggle_groups + self.empty_images
        evaluation = Evaluation(
            ontology=self.ontology,
            kaggle=float((self.kaggle_total + self.empty_images) / denominator) if denominator else 1.0,
            kaggle_options=self.kaggle_options, images=self.images,
            gt_per_class=self.gt_per_class, pred_per_class=self.pred_per_class,
        )
        if self.has_ap:
            (evaluation.iou_precision, evaluation.iou_recall, evaluation.f1_precision) = _average_precision(
                self.outcomes, self.regular, self.ontology.num_classes)
        return evaluation


def _outcomes(candidates: coco_ap.Candidates, rank, dt_class, dt_area, gt: InstanceTable, score, image,
              position) -> Outcomes:
    """Per area range, the outcome of every detection at every threshold (see `Outcomes`)."""
    iou_candidates = coco_ap.Candidates(candidates.dt, candidates.gt, candidates.iou, np.ones(candidates.iou.size))
    # AP_IoU+F1 differs from AP_IoU only on categories with attributes: their detections alone.
    with_attributes = np.isin(dt_class, CATEGORIES_WITH_ATTRIBUTES)
    attribute_rows = np.flatnonzero(with_attributes)
    renumbered = np.full(dt_class.size, -1)
    renumbered[attribute_rows] = np.arange(attribute_rows.size)
    keep = (renumbered[candidates.dt] >= 0) & (candidates.f1 >= coco_ap.F1_THRESHOLDS[0])
    f1_candidates = coco_ap.Candidates(
        renumbered[candidates.dt[keep]], candidates.gt[keep], candidates.iou[keep], candidates.f1[keep]
    )
    pair_iou = np.repeat(coco_ap.IOU_THRESHOLDS, coco_ap.F1_THRESHOLDS.size)
    pair_f1 = np.tile(coco_ap.F1_THRESHOLDS, coco_ap.IOU_THRESHOLDS.size)
    no_f1 = np.zeros(coco_ap.IOU_THRESHOLDS.size)
    hit, ignored, f1_hit, f1_ignored = {}, {}, {}, {}
    for area, (low, high) in coco_ap.AREA_RANGES.items():
        gt_ignored = (gt.area < low) | (gt.area > high)
        dt_outside = (dt_area < low) | (dt_area > high)
        hit[area], ignored[area] = _packed_outcome(
            coco_ap.match(iou_candidates, rank, gt_ignored, coco_ap.IOU_THRESHOLDS, no_f1), gt_ignored, dt_outside)
        f1_hit[area], f1_ignored[area] = _packed_outcome(
            coco_ap.match(f1_candidates, rank[attribute_rows], gt_ignored, pair_iou, pair_f1), gt_ignored,
            dt_outside[attribute_rows])
    # Kept for every detection until the ranking: the smallest types that hold the values (scores
    # stay float64, so ties rank as in the reference evaluators).
    return Outcomes(np.asarray(score, np.float64), np.asarray(image, np.int32), np.asarray(position, np.int32),
                    np.asarray(dt_class, np.int16), hit, ignored, with_attributes, f1_hit, f1_ignored)


def _packed_outcome(matched, gt_ignored, dt_outside):
    """Detections matched to an ignored ground truth, or unmatched outside the area range, do not count."""
    hit = matched >= 0
    ignored = np.where(hit, gt_ignored[np.maximum(matched, 0)], dt_outside[:, None])
    return np.packbits(hit, axis=1), np.packbits(ignored, axis=1)


def _average_precision(parts: list[Outcomes], regular: dict[str, np.ndarray], num_classes: int):
    """Per area range: AP_IoU precision and recall, and AP_IoU+F1 precision of the categories with
    attributes, from all images' outcomes ranked as COCOeval ranks them (score descending, then
    image, then file order)."""
    score, image, position = (_joined(parts, name) for name in ("score", "image", "position"))
    dt_class = _joined(parts, "class_id").astype(np.int64)
    with_attributes = _joined(parts, "with_attributes").astype(bool)
    order = np.lexsort((position, image, -score))
    attribute_index = np.cumsum(with_attributes) - 1  # a detection's row among those with attributes
    attribute_order = attribute_index[order[with_attributes[order]]]
    attribute_classes = np.array(CATEGORIES_WITH_ATTRIBUTES)
    iou_thresholds = coco_ap.IOU_THRESHOLDS.size
    pair_thresholds = iou_thresholds * coco_ap.F1_THRESHOLDS.size
    iou_precision, iou_recall, f1_precision = {}, {}, {}
    for area in AREAS:
        hit, ignored = (_rows(_joined(parts, name, area), iou_thresholds) for name in ("hit", "ignored"))
        iou_precision[area], iou_recall[area] = coco_ap.precision_recall(
            dt_class[order], hit[order], ignored[order], iou_thresholds, regular[area], np.arange(num_classes),
            num_classes)
        hit, ignored = (_rows(_joined(parts, name, area), pair_thresholds) for name in ("f1_hit", "f1_ignored"))
        precision, _ = coco_ap.precision_recall(
            dt_class[with_attributes][attribute_order], hit[attribute_order], ignored[attribute_order],
            pair_thresholds, regular[area], attribute_classes, num_classes)
        f1_precision[area] = precision.reshape(iou_thresholds, coco_ap.F1_THRESHOLDS.size, *precision.shape[1:])
    return iou_precision, iou_recall, f1_precision


def _joined(parts: list[Outcomes], name: str, area: str | None = None) -> np.ndarray:
    values = [getattr(p, name) if area is None else getattr(p, name)[area] for p in parts]
    return np.concatenate(values) if values else np.zeros(0)


def _rows(packed: np.ndarray, thresholds: int) -> np.ndarray:
    """Packed outcomes as a 2-D byte array even when there are none."""
    return packed.reshape(-1, (thresholds + 7) // 8).astype(np.uint8)


def evaluate_frames(
    records: list[ImageRecord], predictions: pd.DataFrame, ontology: Ontology,
    kaggle_options: KaggleOptions = KaggleOptions(), source: str = "<predictions>",
) -> dict:
    """Metrics dict of a predictions DataFrame (submission columns, optional Score) against records."""
    return evaluate(records, predictions_table(predictions, records, ontology, source), ontology, kaggle_options).metrics()

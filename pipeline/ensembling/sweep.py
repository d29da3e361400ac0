"""The tuning sweep: one coordinate pass over score and attribute thresholds (`tune`), each
candidate scored by `Scorer`, which re-scores only the classes the candidate changes.

`tune` picks, each to maximise the metric (the evaluator's kaggle, ap_iou_f1 or ap_iou):
1. a global score cut-off among quantiles of the scores (and 0: no cut);
2. per class with at least `min_class_instances` ground truths: a cut-off among quantiles of that
   class's scores, kept only when it beats the global one;
3. per attribute with at least `min_attribute_positives` ground-truth instances: a probability
   threshold from `attribute_grid`, kept only when it beats `attribute_default`.
AP (ap_iou, ap_iou_f1) never gains from a score cut-off: dropping the lowest scores only shortens
each precision-recall curve. So the AP metrics skip steps 1 and 2 (cut-off 0), and ap_iou, blind
to attributes, tunes nothing.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from pipeline.data.ontology import CATEGORIES_WITH_ATTRIBUTES, Ontology
from pipeline.ensembling.config import TuneConfig
from pipeline.ensembling.thresholds import Thresholds
from pipeline.scoring import coco_ap
from pipeline.scoring.attributes import attribute_matrix, fpeval_f1, set_f1
from pipeline.scoring.instances import InstanceTable, ground_truth_table
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.scoring.kaggle_score import kaggle_sums
from pipeline.scoring.masks import Pairs, overlapping_pairs


class Scorer:
    """The metric of threshold choices on one set of images, re-scored class by class.

    Masks are matched to ground truth once (`pairs`, IoU >= 0.5, possibly computed once for all
    folds and subset). Both metrics split into independent classes: kaggle into (image, class)
    groups, AP into per-class precision entries. `commit` fixes a state of choices and the
    contribution of every class under it; a call re-scores only the classes whose detections the
    candidate changes (a kept row, or the attribute set of a row that overlaps a ground truth) and
    adds the others' committed contributions, in a fixed class order, so equal choices score equal.
    """

    def __init__(self, records, table: InstanceTable, probs, ontology: Ontology, metric: str,
                 options: KaggleOptions, pairs: Pairs | None = None, gt: InstanceTable | None = None):
        """`records`: the images; their instances are read only when `gt` is not given (given, the
        records may carry ids and sizes only). `probs`: (rows, attributes) probabilities, dense or
        scipy sparse; only the rows that overlap a ground truth are ever read, so the others may be
        left out (zero)."""
        self.records, self.table, self.ontology = records, table, ontology
        self.probs = sparse.csr_matrix(probs, dtype=np.float32)
        self.probs_by_attribute = self.probs.tocsc()
        self.metric, self.options = metric, options
        self.gt = ground_truth_table(records) if gt is None else gt
        self.pairs = pairs if pairs is not None else overlapping_pairs(
            self.gt, table, [(r.height, r.width) for r in records], coco_ap.IOU_THRESHOLDS[0])
        self.gt_attributes = attribute_matrix(self.gt.attributes, ontology)
        self.paired = np.zeros(len(table), bool)
        self.paired[self.pairs.pred] = True
        self.image_has_gt = np.zeros(len(records), bool)
        self.image_has_gt[self.gt.image] = True
        # Per class: its rows, ground truths and pairs (pairs keep their order), so re-scoring a class
        # costs its own detections, not the whole table's.
        num_classes = ontology.num_classes
        self.class_rows = _by_class(table.class_id, num_classes)
        self.class_gt_rows = _by_class(self.gt.class_id, num_classes)
        pair_class = table.class_id[self.pairs.pred]
        self.class_pairs = [self.pairs.select(rows) for rows in _by_class(pair_class, num_classes)]
        self.calls = 0
        self.keep = self.cutoffs = self.parts = self.kept_per_image = None

    def commit(self, keep: np.ndarray, attribute_cutoffs: np.ndarray) -> None:
        """Make these choices the base that later calls differ from."""
        classes = range(self.ontology.num_classes) if self.parts is None else self._changed(keep, attribute_cutoffs)
        parts = np.zeros((self.ontology.num_classes, 2)) if self.parts is None else self.parts.copy()
        for c in classes:
            parts[c] = self._class_part(c, keep, attribute_cutoffs)
        self.keep, self.cutoffs, self.parts = keep.copy(), attribute_cutoffs.copy(), parts
        self.kept_per_image = np.bincount(self.table.image[keep], minlength=len(self.records))

    def __call__(self, keep: np.ndarray, attribute_cutoffs: np.ndarray) -> float:
        """The metric with rows `keep` and attributes whose probability reaches their cut-off."""
        if self.parts is None:
            self.commit(keep, attribute_cutoffs)
        self.calls += 1
        parts = self.parts.copy()
        for c in self._changed(keep, attribute_cutoffs):
            parts[c] = self._class_part(c, keep, attribute_cutoffs)
        total, count = parts.sum(axis=0)
        if self.metric != "kaggle":
            return float(total / count) if count else -1.0
        # An image with nothing on either side scores 1 (kaggle_score's empty images).
        changed = np.flatnonzero(keep != self.keep)
        kept = self.kept_per_image + np.bincount(self.table.image[changed], np.where(keep[changed], 1, -1),
                                                 minlength=len(self.records)).astype(np.int64)
        empty = np.count_nonzero(~self.image_has_gt & (kept == 0))
        return float((total + empty) / (count + empty)) if count + empty else 1.0

    def _changed(self, keep: np.ndarray, attribute_cutoffs: np.ndarray) -> np.ndarray:
        """Classes whose kept rows, or the attribute sets of their paired rows, differ from the base."""
        rows = keep != self.keep
        by_attribute = self.probs_by_attribute
        for a in np.flatnonzero(attribute_cutoffs != self.cutoffs):
            # A probability of 0 (not stored) is under every cut-off, old and new.
            entries = slice(by_attribute.indptr[a], by_attribute.indptr[a + 1])
            values = by_attribute.data[entries]
            flipped = by_attribute.indices[entries][(values >= attribute_cutoffs[a]) != (values >= self.cutoffs[a])]
            rows[flipped[self.paired[flipped]]] = True
        return np.unique(self.table.class_id[rows])

    def _class_part(self, c: int, keep: np.ndarray, attribute_cutoffs: np.ndarray) -> tuple[float, float]:
        """Class c's (sum, count): kaggle's group scores and groups, or AP's defined precision entries."""
        members, gt_rows = self.class_rows[c], self.class_gt_rows[c]
        kept = keep[members]
        rows = members[kept]
        # A kept row's place among `rows`, through its place among the class's members.
        local = np.full(members.size, -1)
        local[kept] = np.arange(rows.size)
        pairs = self.class_pairs[c]
        pair_local = local[np.searchsorted(members, pairs.pred)]
        pairs = pairs.select(pair_local >= 0)
        pred_local, gt_local = pair_local[pair_local >= 0], np.searchsorted(gt_rows, pairs.gt)
        pred_attributes = self.probs[pairs.pred].toarray() >= attribute_cutoffs
        num_classes = self.ontology.num_classes
        if self.metric == "kaggle":
            f1 = set_f1(self.gt_attributes[pairs.gt], pred_attributes)
            return kaggle_sums(self.gt.image[gt_rows] * num_classes + c, self.table.image[rows] * num_classes + c,
                               pred_local, gt_local, pairs.iou, f1, self.gt_attributes[gt_rows].any(axis=1),
                               self.options)
        if not gt_rows.size:  # AP is undefined for a class without ground truth: no entry counts
            return 0.0, 0.0
        # AP_IoU+F1's entries of a class with attributes: the (IoU, F1) pairs; else AP_IoU's.
        if c in CATEGORIES_WITH_ATTRIBUTES and self.metric == "ap_iou_f1":
            f1 = fpeval_f1(self.gt_attributes[pairs.gt], pred_attributes)
            hits = f1 >= coco_ap.F1_THRESHOLDS[0]  # no lower F1 passes any threshold
            candidates = coco_ap.Candidates(pred_local[hits], gt_local[hits], pairs.iou[hits], f1[hits])
            thresholds = (np.repeat(coco_ap.IOU_THRESHOLDS, coco_ap.F1_THRESHOLDS.size),
                          np.tile(coco_ap.F1_THRESHOLDS, coco_ap.IOU_THRESHOLDS.size))
        else:
            candidates = coco_ap.Candidates(pred_local, gt_local, pairs.iou, np.ones(pairs.iou.size))
            thresholds = (coco_ap.IOU_THRESHOLDS, np.zeros(coco_ap.IOU_THRESHOLDS.size))
        pool = coco_ap.class_precision(self.table.image[rows], self.table.score[rows], candidates, gt_rows.size,
                                       *thresholds)
        defined = pool[pool > -1]
        return float(defined.sum()), float(defined.size)


def _by_class(class_id: np.ndarray, num_classes: int) -> list[np.ndarray]:
    """The ascending indices of each class's entries."""
    order = np.argsort(class_id, kind="stable")
    bounds = np.searchsorted(class_id[order], np.arange(num_classes + 1))
    return [order[bounds[c]:bounds[c + 1]] for c in range(num_classes)]


def tune(scorer: Scorer, cfg: TuneConfig) -> Thresholds:
    """One coordinate sweep: global cut-off, per-class cut-offs, per-attribute thresholds."""
    table, ontology = scorer.table, scorer.ontology
    score, class_id = table.score, table.class_id
    attribute_cutoffs = np.full(ontology.num_attributes, cfg.attribute_default)
    quantiles = np.linspace(0, 1, cfg.score_candidates, endpoint=False)

    def best(candidates, evaluate_candidate, default):
        """The candidate strictly better than `default` (evaluated first), else `default`."""
        best_value, best_score = default, evaluate_candidate(default)
        for candidate in candidates:
            value = evaluate_candidate(candidate)
            if value > best_score:
                best_value, best_score = candidate, value
        return float(best_value)

    # AP never gains from a score cut-off (it only shortens the ranked list), so only kaggle searches.
    cuts = scorer.metric == "kaggle"
    global_cut = best(_candidates(score, quantiles) if cuts else [],
                      lambda t: scorer(score >= t, attribute_cutoffs), 0.0)
    scorer.commit(score >= global_cut, attribute_cutoffs)
    cutoffs = np.full(ontology.num_classes, global_cut)
    gt_per_class = np.bincount(scorer.gt.class_id, minlength=ontology.num_classes)
    for c in np.flatnonzero(gt_per_class >= cfg.min_class_instances if cuts else []):
        def with_class_cut(t, c=c):
            trial = cutoffs.copy()
            trial[c] = t
            return scorer(score >= trial[class_id], attribute_cutoffs)
        cutoffs[c] = best(_candidates(score[class_id == c], quantiles), with_class_cut, global_cut)
        scorer.commit(score >= cutoffs[class_id], attribute_cutoffs)
    keep = score >= cutoffs[class_id]
    positives = np.bincount([ontology.attribute_index[a] for ids in scorer.gt.attributes for a in ids],
                            minlength=ontology.num_attributes)
    # AP_IoU does not look at attributes.
    for a in np.flatnonzero(positives >= cfg.min_attribute_positives if scorer.metric != "ap_iou" else []):
        def with_attribute_cut(t, a=a):
            trial = attribute_cutoffs.copy()
            trial[a] = t
            return scorer(keep, trial)
        attribute_cutoffs[a] = best(cfg.attribute_grid, with_attribute_cut, cfg.attribute_default)
        scorer.commit(keep, attribute_cutoffs)
    return Thresholds(
        scorer.metric, global_cut,
        {int(c): float(cutoffs[c]) for c in np.flatnonzero(cutoffs != global_cut)},
        cfg.attribute_default,
        {int(ontology.attribute_ids[a]): float(attribute_cutoffs[a])
         for a in np.flatnonzero(attribute_cutoffs != cfg.attribute_default)},
    )


def _candidates(scores: np.ndarray, quantiles: np.ndarray) -> list[float]:
    """Distinct score quantiles above 0 (0, no cut, is the default everywhere)."""
    values = np.unique(np.quantile(scores, quantiles)) if scores.size else np.zeros(0)
    return [float(v) for v in values if v > 0]

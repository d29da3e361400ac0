"""Score and attribute thresholds tuned on out-of-fold predictions (the `tune` stage).

On the OOF predictions (default the ensemble's) against train.csv, one coordinate sweep picks, each
to maximise `metric` (the evaluator's kaggle, ap_iou_f1 or ap_iou):
1. a global score cut-off among quantiles of the scores (and 0: no cut);
2. per class with at least `min_class_instances` ground truths: a cut-off among quantiles of that
   class's scores, kept only when it beats the global one;
3. per attribute with at least `min_attribute_positives` ground-truth instances: a probability
   threshold from `attribute_grid`, kept only when it beats `attribute_default`.
Masks are matched once, for all images (the folds' scorers take their share of the pairs); a
candidate re-scores only the classes it changes (`Scorer`), never the whole evaluation. The file
(sorted by ImageId) is read a chunk of images at a time; masks are dropped once matched, and only
rows that overlap a ground truth keep their attribute probabilities. AP (ap_iou, ap_iou_f1) never
gains from a score cut-off: dropping the lowest scores only shortens each precision-recall curve.
So the AP metrics skip steps 1 and 2 (cut-off 0), and ap_iou, blind to attributes, tunes nothing.

Writes `out` (the thresholds learned on all OOF images, for test; see `thresholds`) and `report`:
the metric before and after tuning cross-fitted over the folds (thresholds learned on the other
folds' images, scored on the held-out fold; `cache/folds.csv`), their mean, and the in-sample
numbers of the all-data thresholds, which are optimistic by construction.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import sparse

from pipeline import io
from pipeline.data import ontology as ontology_lib
from pipeline.data.annotations import AnnotationIndex, index_annotations, records_by_image_id
from pipeline.data.folds import folds_of_images
from pipeline.data.ontology import CATEGORIES_WITH_ATTRIBUTES, Ontology
from pipeline.data.sorted_csv import header
from pipeline.ensembling.config import TuneConfig
from pipeline.ensembling.inputs import SCORES_COLUMN, attribute_vector
from pipeline.ensembling.thresholds import Thresholds, apply_thresholds, save
from pipeline.errors import InputError
from pipeline.scoring import coco_ap
from pipeline.scoring.attributes import attribute_matrix, set_f1
from pipeline.scoring.evaluator import Accumulator, evaluate
from pipeline.scoring.instances import InstanceTable, ground_truth_table
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.scoring.kaggle_score import kaggle_sums
from pipeline.scoring.masks import Pairs, overlapping_pairs
from pipeline.scoring.predictions import PREDICTION_COLUMNS, chunked_tables, rows_table

HEADLINE = ("ap_iou", "ap_iou_f1", "kaggle")


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
        rows = np.flatnonzero(keep & (self.table.class_id == c))
        gt_rows = np.flatnonzero(self.gt.class_id == c)
        local = np.full(len(self.table), -1)
        local[rows] = np.arange(rows.size)
        pairs = self.pairs.select(local[self.pairs.pred] >= 0)
        gt_local = np.full(len(self.gt), -1)
        gt_local[gt_rows] = np.arange(gt_rows.size)
        pred_attributes = self.probs[pairs.pred].toarray() >= attribute_cutoffs
        num_classes = self.ontology.num_classes
        if self.metric == "kaggle":
            f1 = set_f1(self.gt_attributes[pairs.gt], pred_attributes)
            return kaggle_sums(self.gt.image[gt_rows] * num_classes + c, self.table.image[rows] * num_classes + c,
                               local[pairs.pred], gt_local[pairs.gt], pairs.iou, f1,
                               self.gt_attributes[gt_rows].any(axis=1), self.options)
        if not gt_rows.size:  # AP is undefined for a class without ground truth: no entry counts
            return 0.0, 0.0
        # Only rows that overlap a ground truth need their attributes: the others never meet one.
        ids = self.ontology.attribute_ids
        attributes = [()] * rows.size
        for row, chosen in zip(local[pairs.pred], pred_attributes):
            attributes[row] = tuple(ids[chosen].tolist())
        # Masks are matched already (`pairs`): the tables need no runs.
        table = InstanceTable(self.table.image[rows], self.table.class_id[rows], attributes, [],
                              self.table.area[rows], self.table.score[rows])
        gt = InstanceTable(self.gt.image[gt_rows], self.gt.class_id[gt_rows], [self.gt.attributes[r] for r in gt_rows],
                           [], self.gt.area[gt_rows])
        evaluation = evaluate(self.records, table, self.ontology, self.options, gt=gt,
                              pairs=Pairs(local[pairs.pred], gt_local[pairs.gt], pairs.iou))
        pool = (evaluation.f1_precision["all"][..., c] if c in CATEGORIES_WITH_ATTRIBUTES and self.metric == "ap_iou_f1"
                else evaluation.iou_precision["all"][..., c])
        defined = pool[pool > -1]
        return float(defined.sum()), float(defined.size)


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


def tune_file(source: Path, gt_path: Path, folds_path: Path, cfg: TuneConfig, options: KaggleOptions,
              out: str | Path, report_path: str | Path) -> str:
    """Thresholds tuned on the OOF predictions `source` into `out`, the cross-fitted report into
    `report_path`; a summary line."""
    started = time.perf_counter()
    ontology = ontology_lib.load_for_dataset(gt_path.parent)
    index = index_annotations(gt_path, ontology)
    table, gt, pairs, probs = matched(source, index, ontology)
    fold_of_image = _folds(folds_path, index.image_ids)
    predicted = np.unique(fold_of_image[table.image])
    predicted = predicted[predicted >= 0]  # images the folds file leaves out are never scored

    def subset(images):
        """A scorer's arguments for some images: each fold takes its share of the matched pairs."""
        rows = np.flatnonzero(np.isin(table.image, images))
        gt_rows = np.flatnonzero(np.isin(gt.image, images))
        local, gt_local = np.full(len(table), -1), np.full(len(gt), -1)
        local[rows], gt_local[gt_rows] = np.arange(rows.size), np.arange(gt_rows.size)
        shared = pairs.select(local[pairs.pred] >= 0)
        return ([index.sized_record(i) for i in images], table.of_images(images), probs[rows], ontology, cfg.metric,
                options, Pairs(local[shared.pred], gt_local[shared.gt], shared.iou), gt.of_images(images))

    learned = {}
    for fold in predicted if predicted.size > 1 else ():  # one fold: nothing to tune on but itself
        train_images = np.flatnonzero(np.isin(fold_of_image, predicted) & (fold_of_image != fold))
        learned[int(fold)] = tune(Scorer(*subset(train_images)), cfg)
    all_images = np.flatnonzero(np.isin(fold_of_image, predicted))
    scorer = Scorer(*subset(all_images))
    thresholds = tune(scorer, cfg)
    save(out, thresholds)
    scores = headlines(source, index, ontology, options, fold_of_image, predicted, learned, thresholds)
    in_predicted_folds = int(np.isin(fold_of_image, predicted).sum())
    folds = [{"fold": fold, "tuned_on_images": in_predicted_folds - int((fold_of_image == fold).sum()),
              "images": int((fold_of_image == fold).sum()), "before": scores[("before", fold)],
              "after": scores[("after", fold)], "classes_tuned": len(learned[fold].class_scores),
              "attributes_tuned": len(learned[fold].attributes)} for fold in learned]
    mean = {when: {key: float(np.mean([f[when][key] for f in folds])) for key in HEADLINE}
            for when in ("before", "after")} if folds else None
    report = {
        "metric": cfg.metric, "predictions": str(source),
        "cross_fitted": {"note": "thresholds tuned on the other folds, scored on the held-out fold; mean of folds",
                         **mean, "folds": folds} if folds else
        {"note": "one fold of out-of-fold predictions: no held-out data to score tuning on"},
        "all_data": {"note": "thresholds for test (tuning/thresholds.json); in-sample scores are optimistic",
                     "images": int(all_images.size), "in_sample_before": scores[("before", "all")],
                     "in_sample_after": scores[("after", "all")], "score": thresholds.score,
                     "classes_tuned": len(thresholds.class_scores), "attributes_tuned": len(thresholds.attributes),
                     "evaluations": scorer.calls},
        "seconds": round(time.perf_counter() - started, 1),
    }
    io.write_json(report_path, report)
    metric = cfg.metric
    scored = (f"{metric} cross-fitted over {len(folds)} folds: {mean['before'][metric]:.4f} before, "
              f"{mean['after'][metric]:.4f} after tuning" if folds else f"{metric} not cross-fitted (one fold)")
    return (f"{scored}; all-data thresholds (global score {thresholds.score:.3f}, "
            f"{len(thresholds.class_scores)} class and {len(thresholds.attributes)} attribute cut-offs) -> {out}, "
            f"report -> {report_path} ({report['seconds']} s)")


def matched(source: Path, index: AnnotationIndex, ontology: Ontology):
    """(predictions, ground truth, their IoU >= 0.5 pairs, attribute probabilities) of every image,
    read a chunk of images at a time beside the ground truth. Masks are matched here once and then
    dropped: the tables keep no runs, and only the rows that overlap a ground truth keep their
    probabilities (sparse)."""

    tables, gts, found, probs = [], [], [], []
    rows = gt_rows = 0
    has_scores = SCORES_COLUMN in header(source, PREDICTION_COLUMNS)
    for images, chunk_records, frame, table in chunked_tables(source, records_by_image_id(index, ontology), ontology):
        gt = ground_truth_table(chunk_records)
        pairs = overlapping_pairs(gt, table, [(r.height, r.width) for r in chunk_records], coco_ap.IOU_THRESHOLDS[0])
        paired = np.zeros(len(table), bool)
        paired[pairs.pred] = True
        texts = frame[SCORES_COLUMN] if has_scores else None
        vectors = np.zeros((len(table), ontology.num_attributes), np.float32)
        for row, (line, attributes) in enumerate(zip(table.line, table.attributes)):
            # Every row is checked; only the paired rows' probabilities are kept.
            text = texts.loc[line - 2] if has_scores else ""
            vector = attribute_vector(text, attributes, ontology, source, int(line))
            if paired[row]:
                vectors[row] = vector
        probs.append(sparse.csr_matrix(vectors))
        tables.append(InstanceTable(images[table.image], table.class_id, [()] * len(table), [], table.area,
                                    table.score, table.line))
        gts.append(InstanceTable(images[gt.image], gt.class_id, gt.attributes, [], gt.area))
        found.append(Pairs(pairs.pred + rows, pairs.gt + gt_rows, pairs.iou))
        rows, gt_rows = rows + len(table), gt_rows + len(gt)
    if tables[0].score is None:
        raise InputError("no Score column: tuning needs confidences", source, 1)
    return (_joined_tables(tables), _joined_tables(gts),
            Pairs(*(np.concatenate([getattr(p, name) for p in found]) for name in ("pred", "gt", "iou"))),
            sparse.vstack(probs, format="csr"))


def _joined_tables(tables: list[InstanceTable]) -> InstanceTable:
    return InstanceTable(
        np.concatenate([t.image for t in tables]), np.concatenate([t.class_id for t in tables]),
        [a for t in tables for a in t.attributes], [], np.concatenate([t.area for t in tables]),
        None if tables[0].score is None else np.concatenate([t.score for t in tables]),
        None if tables[0].line is None else np.concatenate([t.line for t in tables]),
    )


def headlines(source: Path, index: AnnotationIndex, ontology: Ontology, options: KaggleOptions,
              fold_of_image: np.ndarray, predicted: np.ndarray, learned: dict[int, Thresholds],
              thresholds: Thresholds) -> dict:
    """HEADLINE scores, in one pass over the file: ("before" | "after", fold) of each held-out fold
    under the thresholds learned without it, and ("before" | "after", "all") of all predicted folds'
    images under the all-data thresholds."""
    names = [("before", int(f)) for f in predicted] + [("after", f) for f in learned] + [("after", "all")]
    accumulators = {name: Accumulator(ontology, options) for name in names}
    for images, records, frame, table in chunked_tables(source, records_by_image_id(index, ontology), ontology):
        chunk_folds = fold_of_image[images]
        for fold in predicted:
            local = np.flatnonzero(chunk_folds == fold)
            if local.size:
                _add(accumulators[("before", int(fold))], records, images, local, table.of_images(local),
                     table.line[np.isin(table.image, local)])
        for name, chosen in [(("after", f), learned[f]) for f in learned] + [(("after", "all"), thresholds)]:
            local = np.flatnonzero(np.isin(chunk_folds, predicted) if name[1] == "all" else chunk_folds == name[1])
            if local.size:
                rows = frame[frame["ImageId"].str.strip().isin({records[j].image_id for j in local})]
                kept = rows_table(apply_thresholds(rows, chosen, str(source)), [records[j] for j in local], ontology,
                                  source)
                _add(accumulators[name], records, images, local, kept, kept.line)
    # An empty accumulator first: a file without predictions has no predicted folds to pool.
    accumulators[("before", "all")] = Accumulator.merge(
        [Accumulator(ontology, options)] + [accumulators[("before", int(f))] for f in predicted])
    result = {}
    for name, accumulator in accumulators.items():
        metrics = accumulator.result().metrics()
        result[name] = {key: metrics[key] for key in HEADLINE}
    return result


def _add(accumulator: Accumulator, records, images: np.ndarray, local: np.ndarray, table: InstanceTable,
         position: np.ndarray) -> None:
    """Add the chunk's images `local` (`records`: the chunk's, `images`: their ground-truth indices)."""
    accumulator.add([records[j] for j in local], table, image_index=images[local], position=position)


def _folds(path: Path, image_ids: list[str]) -> np.ndarray:
    """Fold per ground-truth image (-1: not in the folds file)."""
    if not path.exists():
        raise InputError("folds file not found: cross-fitting needs the folds stage's output", path)
    return folds_of_images(path, image_ids)

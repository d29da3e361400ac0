"""Score and attribute thresholds tuned on out-of-fold predictions (the `tune` stage).

On the OOF predictions (default the ensemble's; any row order) against train.csv, one coordinate
sweep (`sweep.tune`) picks a global score cut-off, per-class cut-offs and per-attribute
probability thresholds, each to maximise `metric` (the evaluator's kaggle, ap_iou_f1 or ap_iou).
Masks are matched once, for all images (the folds' scorers take their share of the pairs); a
candidate re-scores only the classes it changes (`sweep.Scorer`), never the whole evaluation. The
file is read a chunk of images at a time, each chunk validated and matched by one of `workers`
processes (`TuneConfig.workers`, None: every core); masks are dropped once matched, and only
rows that overlap a ground truth keep their attribute probabilities. The sweeps (one per held-out
fold, one on all images) run on the workers side by side, and the scores before and after are
again counted a chunk at a time on the workers; every result comes back in order, so the files
are the same whatever the number of workers.

Writes `out` (the thresholds learned on all OOF images, for test; see `thresholds`) and `report`:
the metric before and after tuning cross-fitted over the folds (thresholds learned on the other
folds' images, scored on the held-out fold; `cache/folds.csv`), their mean, and the in-sample
numbers of the all-data thresholds, which are optimistic by construction.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from pipeline import io
from pipeline.data import ontology as ontology_lib
from pipeline.data.annotations import AnnotationIndex, index_annotations, streamed_records, with_instances
from pipeline.data.folds import folds_of_images
from pipeline.data.ontology import Ontology
from pipeline.data.sorted_csv import header
from pipeline.ensembling.config import TuneConfig
from pipeline.ensembling.inputs import SCORES_COLUMN, attribute_vector
from pipeline.ensembling.sweep import Scorer, tune
from pipeline.ensembling.thresholds import Thresholds, save
from pipeline.errors import InputError
from pipeline.parallel import ordered_map, worker_count
from pipeline.progress import bar
from pipeline.scoring import coco_ap
from pipeline.scoring.evaluator import Accumulator
from pipeline.scoring.instances import InstanceTable, ground_truth_table
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.scoring.masks import Pairs, overlapping_pairs
from pipeline.scoring.predictions import PREDICTION_COLUMNS, chunked_frames, frame_of, rows_table

HEADLINE = ("ap_iou", "ap_iou_f1", "kaggle")


def tune_file(source: Path, gt_path: Path, folds_path: Path, cfg: TuneConfig, options: KaggleOptions,
              out: str | Path, report_path: str | Path, progress: bool = False) -> str:
    """Thresholds tuned on the OOF predictions `source` into `out`, the cross-fitted report into
    `report_path`, on `cfg.workers` processes; a summary line."""
    started = time.perf_counter()
    ontology = ontology_lib.load_for_dataset(gt_path.parent)
    workers = worker_count(cfg.workers)
    index = index_annotations(gt_path, ontology, workers=workers)
    fold_of_image = _folds(folds_path, index.image_ids)
    thresholds, report = tuned(source, index, fold_of_image, ontology, cfg, options, workers, progress)
    report["seconds"] = round(time.perf_counter() - started, 1)
    save(out, thresholds)
    io.write_json(report_path, report)
    metric, cross = cfg.metric, report["cross_fitted"]
    scored = (f"{metric} cross-fitted over {len(cross['folds'])} folds: {cross['before'][metric]:.4f} before, "
              f"{cross['after'][metric]:.4f} after tuning" if "folds" in cross else f"{metric} not cross-fitted (one fold)")
    return (f"{scored}; all-data thresholds (global score {thresholds.score:.3f}, "
            f"{len(thresholds.class_scores)} class and {len(thresholds.attributes)} attribute cut-offs) -> {out}, "
            f"report -> {report_path} ({report['seconds']} s)")


def tuned(source: Path, index: AnnotationIndex, fold_of_image: np.ndarray, ontology: Ontology, cfg: TuneConfig,
          options: KaggleOptions, workers: int = 1, progress: bool = False) -> tuple[Thresholds, dict]:
    """The all-data thresholds and the report (without its seconds) of a predictions file.
    `fold_of_image`: each ground-truth image's fold (-1: in none)."""
    matches = matched(source, index, ontology, workers, progress)
    predicted = np.unique(fold_of_image[matches.table.image])
    predicted = predicted[predicted >= 0]  # images the folds file leaves out are never scored
    folds = [int(f) for f in predicted] if predicted.size > 1 else []  # one fold: nothing to tune on but itself
    context = _SweepContext(matches, index, fold_of_image, predicted, ontology, cfg, options)
    swept = dict(zip([*folds, "all"], ordered_map(_sweep, [*folds, "all"], context, workers)))
    learned = {fold: swept[fold][0] for fold in folds}
    thresholds, calls = swept["all"]
    scores = headlines(matches, index, ontology, options, fold_of_image, predicted, learned, thresholds, workers,
                       progress)
    in_predicted_folds = int(np.isin(fold_of_image, predicted).sum())
    rows = [{"fold": fold, "tuned_on_images": in_predicted_folds - int((fold_of_image == fold).sum()),
             "images": int((fold_of_image == fold).sum()), "before": scores[("before", fold)],
             "after": scores[("after", fold)], "classes_tuned": len(learned[fold].class_scores),
             "attributes_tuned": len(learned[fold].attributes)} for fold in learned]
    mean = {when: {key: float(np.mean([f[when][key] for f in rows])) for key in HEADLINE}
            for when in ("before", "after")} if rows else None
    report = {
        "metric": cfg.metric, "predictions": str(source),
        "cross_fitted": {"note": "thresholds tuned on the other folds, scored on the held-out fold; mean of folds",
                         **mean, "folds": rows} if rows else
        {"note": "one fold of out-of-fold predictions: no held-out data to score tuning on"},
        "all_data": {"note": "thresholds for test (tuning/thresholds.json); in-sample scores are optimistic",
                     "images": in_predicted_folds, "in_sample_before": scores[("before", "all")],
                     "in_sample_after": scores[("after", "all")], "score": thresholds.score,
                     "classes_tuned": len(thresholds.class_scores), "attributes_tuned": len(thresholds.attributes),
                     "evaluations": calls},
    }
    return thresholds, report


@dataclass
class Matches:
    """Every image's predictions and ground truth without masks, their IoU >= 0.5 pairs, and, for
    the rows in a pair, their AttributesIds and attribute probabilities (float64, sparse; a row
    without AttributeScores: its AttributesIds at 1, as `apply_thresholds` keeps them). Rows come
    chunk by chunk as read; chunk k holds rows `row_bounds[k]:row_bounds[k + 1]` and likewise
    ground truths and pairs, of the images `chunks[k]`."""
    table: InstanceTable
    gt: InstanceTable
    pairs: Pairs
    probs: object  # scipy.sparse.csr_matrix (rows, attributes)
    chunks: list[np.ndarray]
    row_bounds: np.ndarray
    gt_bounds: np.ndarray
    pair_bounds: np.ndarray


@dataclass(frozen=True)
class _FileContext:
    source: Path
    ontology: Ontology
    has_scores: bool


def matched(source: Path, index: AnnotationIndex, ontology: Ontology, workers: int = 1,
            progress: bool = False) -> Matches:
    """The `Matches` of every image, read a chunk of images at a time beside the ground truth and
    matched by `workers` processes; masks are dropped once matched."""
    context = _FileContext(source, ontology, SCORES_COLUMN in header(source, PREDICTION_COLUMNS))
    tables, gts, found, probs, chunks = [], [], [], [], []
    chunk_frames = chunked_frames(source, streamed_records(index, ontology))
    with bar(progress, len(index.image_ids), "tune: matching") as counter:
        for images, table, gt, pairs, vectors in ordered_map(_match_chunk, chunk_frames, context, workers):
            rows, gt_rows = sum(len(t) for t in tables), sum(len(g) for g in gts)
            tables.append(table)
            gts.append(gt)
            found.append(Pairs(pairs.pred + rows, pairs.gt + gt_rows, pairs.iou))
            probs.append(vectors)
            chunks.append(images)
            counter.update(images.size)
    if tables[0].score is None:
        raise InputError("no Score column: tuning needs confidences", source, 1)
    bounds = [np.cumsum([0, *(len(part) for part in parts)]) for parts in (tables, gts, [p.iou for p in found])]
    return Matches(_joined_tables(tables), _joined_tables(gts),
                   Pairs(*(np.concatenate([getattr(p, name) for p in found]) for name in ("pred", "gt", "iou"))),
                   sparse.vstack(probs, format="csr"), chunks, *bounds)


def _match_chunk(context: _FileContext, chunk):
    """One chunk's (images, predictions, ground truth, pairs, paired rows' probabilities), `image`
    the ground-truth image index, pairs indexing the chunk's rows."""
    images, records, rows = chunk
    records, frame = with_instances(records, context.ontology), frame_of(rows)
    table = rows_table(frame, records, context.ontology, context.source)
    gt = ground_truth_table(records)
    pairs = overlapping_pairs(gt, table, [(r.height, r.width) for r in records], coco_ap.IOU_THRESHOLDS[0])
    paired = np.zeros(len(table), bool)
    paired[pairs.pred] = True
    texts = frame[SCORES_COLUMN] if context.has_scores else None
    vectors = np.zeros((len(table), context.ontology.num_attributes))
    for row, (line, attributes) in enumerate(zip(table.line, table.attributes)):
        # Every row is checked; only the paired rows' probabilities are kept.
        text = texts.loc[line - 2] if context.has_scores else ""
        vector = attribute_vector(text, attributes, context.ontology, context.source, int(line), np.float64)
        if paired[row]:
            vectors[row] = vector
    # Only a paired row's attributes ever meet a ground truth's: the others' are dropped.
    attributes = [a if p else () for a, p in zip(table.attributes, paired)]
    return (images, InstanceTable(images[table.image], table.class_id, attributes, [], table.area, table.score,
                                  table.line),
            InstanceTable(images[gt.image], gt.class_id, gt.attributes, [], gt.area), pairs, sparse.csr_matrix(vectors))


def _joined_tables(tables: list[InstanceTable]) -> InstanceTable:
    return InstanceTable(
        np.concatenate([t.image for t in tables]), np.concatenate([t.class_id for t in tables]),
        [a for t in tables for a in t.attributes], [], np.concatenate([t.area for t in tables]),
        None if tables[0].score is None else np.concatenate([t.score for t in tables]),
        None if tables[0].line is None else np.concatenate([t.line for t in tables]),
    )


@dataclass(frozen=True)
class _SweepContext:
    matches: Matches
    index: AnnotationIndex
    fold_of_image: np.ndarray
    predicted: np.ndarray
    ontology: Ontology
    cfg: TuneConfig
    options: KaggleOptions


def _sweep(context: _SweepContext, fold) -> tuple[Thresholds, int]:
    """(thresholds, scorer calls) learned on the predicted folds' images but `fold`'s ("all": on all)."""
    in_predicted = np.isin(context.fold_of_image, context.predicted)
    images = np.flatnonzero(in_predicted if fold == "all" else in_predicted & (context.fold_of_image != fold))
    scorer = Scorer(*_subset(context, images))
    return tune(scorer, context.cfg), scorer.calls


def _subset(context: _SweepContext, images: np.ndarray) -> tuple:
    """A scorer's arguments for some images: each fold takes its share of the matched pairs."""
    table, gt, pairs = context.matches.table, context.matches.gt, context.matches.pairs
    rows = np.flatnonzero(np.isin(table.image, images))
    gt_rows = np.flatnonzero(np.isin(gt.image, images))
    local, gt_local = np.full(len(table), -1), np.full(len(gt), -1)
    local[rows], gt_local[gt_rows] = np.arange(rows.size), np.arange(gt_rows.size)
    shared = pairs.select(local[pairs.pred] >= 0)
    return ([context.index.sized_record(i) for i in images], table.of_images(images), context.matches.probs[rows],
            context.ontology, context.cfg.metric, context.options,
            Pairs(local[shared.pred], gt_local[shared.gt], shared.iou), gt.of_images(images))


@dataclass(frozen=True)
class _HeadlineContext:
    matches: Matches
    index: AnnotationIndex
    ontology: Ontology
    options: KaggleOptions
    fold_of_image: np.ndarray
    predicted: np.ndarray
    learned: dict[int, Thresholds]
    thresholds: Thresholds


def headlines(matches: Matches, index: AnnotationIndex, ontology: Ontology, options: KaggleOptions,
              fold_of_image: np.ndarray, predicted: np.ndarray, learned: dict[int, Thresholds],
              thresholds: Thresholds, workers: int = 1, progress: bool = False) -> dict:
    """HEADLINE scores: ("before" | "after", fold) of each held-out fold under the thresholds
    learned without it, and ("before" | "after", "all") of all predicted folds' images under the
    all-data thresholds. Counted from the matches (no mask is read or matched again), chunk by
    chunk as they were read, by `workers` processes, and pooled in order."""
    context = _HeadlineContext(matches, index, ontology, options, fold_of_image, predicted, learned, thresholds)
    names = [("before", int(f)) for f in predicted] + [("after", f) for f in learned] + [("after", "all")]
    accumulators = {name: Accumulator(ontology, options) for name in names}
    with bar(progress, len(index.image_ids), "tune: scoring") as counter:
        for parts, count in ordered_map(_headline_chunk, range(len(matches.chunks)), context, workers):
            for name, part in parts.items():
                accumulators[name] = Accumulator.merge([accumulators[name], part])
            counter.update(count)
    # An empty accumulator first: a file without predictions has no predicted folds to pool.
    accumulators[("before", "all")] = Accumulator.merge(
        [Accumulator(ontology, options)] + [accumulators[("before", int(f))] for f in predicted])
    result = {}
    for name, accumulator in accumulators.items():
        metrics = accumulator.result().metrics()
        result[name] = {key: metrics[key] for key in HEADLINE}
    return result


def _headline_chunk(context: _HeadlineContext, k: int) -> tuple[dict, int]:
    """Each name's accumulator of chunk k's images, every accumulator taking its images, and
    under thresholds its kept rows, of the chunk's matched pairs."""
    matches = context.matches
    images = matches.chunks[k]
    rows, gt_rows = (slice(*b[k:k + 2]) for b in (matches.row_bounds, matches.gt_bounds))
    pairs = slice(*matches.pair_bounds[k:k + 2])
    # The chunk's tables, `image` indexing `images`, and its pairs indexing them.
    image_of = np.full(len(context.fold_of_image), -1)
    image_of[images] = np.arange(images.size)
    table, gt = (InstanceTable(image_of[t.image[r]], t.class_id[r], t.attributes[r], [], t.area[r],
                               None if t.score is None else t.score[r], None if t.line is None else t.line[r])
                 for t, r in ((matches.table, rows), (matches.gt, gt_rows)))
    chunk_pairs = Pairs(matches.pairs.pred[pairs] - rows.start, matches.pairs.gt[pairs] - gt_rows.start,
                        matches.pairs.iou[pairs])
    probs = matches.probs[rows]
    records = [context.index.sized_record(i) for i in images]
    chunk_folds = context.fold_of_image[images]
    plans = [(("before", int(f)), None, chunk_folds == f) for f in context.predicted]
    plans += [(("after", f), context.learned[f], chunk_folds == f) for f in context.learned]
    plans += [(("after", "all"), context.thresholds, np.isin(chunk_folds, context.predicted))]
    parts = {}
    for name, thresholds, in_images in plans:
        local = np.flatnonzero(in_images)
        if not local.size:
            continue
        chosen, keep = (table, np.ones(len(table), bool)) if thresholds is None else \
            _thresholded(table, probs, chunk_pairs, thresholds, context.ontology)
        parts[name] = Accumulator(context.ontology, context.options)
        parts[name].add(*_images_of(records, images, local, chosen, keep, gt, chunk_pairs))
    return parts, images.size


def _thresholded(table: InstanceTable, probs, pairs: Pairs, thresholds: Thresholds,
                 ontology: Ontology) -> tuple[InstanceTable, np.ndarray]:
    """The table as `apply_thresholds` leaves the rows: (the table with the paired rows'
    AttributesIds re-derived from their probabilities, the rows whose score reaches their class's
    cut-off). The other rows' attributes never meet a ground truth's."""
    keep = table.score >= thresholds.class_cutoffs(ontology.num_classes)[table.class_id]
    cutoffs = thresholds.attribute_cutoffs(ontology.attribute_ids)
    ids = np.asarray(ontology.attribute_ids)
    attributes = list(table.attributes)
    for row in np.unique(pairs.pred):
        start, end = probs.indptr[row], probs.indptr[row + 1]
        columns, values = probs.indices[start:end], probs.data[start:end]
        attributes[row] = tuple(ids[np.sort(columns[values >= cutoffs[columns]])].tolist())
    return InstanceTable(table.image, table.class_id, attributes, table.runs, table.area, table.score,
                         table.line), keep


def _images_of(records, images: np.ndarray, local: np.ndarray, table: InstanceTable, keep: np.ndarray,
               gt: InstanceTable, pairs: Pairs) -> tuple:
    """`Accumulator.add`'s arguments for the chunk's images `local` and the rows `keep`: the
    chunk's pairs re-indexed, so no mask is matched twice."""
    rows = np.flatnonzero(np.isin(table.image, local) & keep)
    gt_rows = np.flatnonzero(np.isin(gt.image, local))
    renumber, gt_renumber = np.full(len(table), -1), np.full(len(gt), -1)
    renumber[rows], gt_renumber[gt_rows] = np.arange(rows.size), np.arange(gt_rows.size)
    shared = pairs.select(renumber[pairs.pred] >= 0)
    image_of = np.full(len(records), -1)
    image_of[local] = np.arange(local.size)
    sub = InstanceTable(image_of[table.image[rows]], table.class_id[rows], [table.attributes[r] for r in rows], [],
                        table.area[rows], table.score[rows], table.line[rows])
    sub_gt = gt.of_images(local)
    return ([records[j] for j in local], sub, images[local], sub.line, sub_gt,
            Pairs(renumber[shared.pred], gt_renumber[shared.gt], shared.iou))


def _folds(path: Path, image_ids: list[str]) -> np.ndarray:
    """Fold per ground-truth image (-1: not in the folds file)."""
    if not path.exists():
        raise InputError("folds file not found: cross-fitting needs the folds stage's output", path)
    return folds_of_images(path, image_ids)

"""Cross-validation metrics of every model's out-of-fold predictions (the `report` stage).

Reads `<predictions_dir>/<model>.csv` (submission columns plus Score, all folds' out-of-fold
predictions) and the folds file (`ImageId,fold`), scores each fold's images on their own and all
predicted folds together, and writes:
- `out` (DVC metrics): per model the mean over folds of ap_iou, ap_iou_f1, ap_iou_f1_50 and kaggle,
  `folds` (each fold's scores) and `pooled` (all predicted folds' images scored at once);
- `plots/pr_curves.csv` + `.png`: AP_IoU precision-recall curves per supercategory (pooled);
- `plots/per_category.csv` + `.png`: per-category AP_IoU and AP_IoU+F1 (pooled).
Folds without any prediction are left out (a model trained on some folds only). Without a folds
file every image is one fold. Each file (in any row order) is read once beside the ground truth, a
chunk of images at a time scored by `workers` processes (`scoring.streamed`), into one
`Accumulator` per fold; the pooled score merges them, so memory holds the detections' outcomes, not
the predictions or the ground-truth masks.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")  # files only: no display
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)

from pipeline import io
from pipeline.data import ontology as ontology_lib
from pipeline.data.annotations import AnnotationIndex, index_annotations, streamed_records
from pipeline.data.folds import folds_of_images
from pipeline.data.ontology import GROUPS
from pipeline.parallel import ordered_map, worker_count
from pipeline.scoring.evaluator import Accumulator, Evaluation
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.scoring.streamed import score_file

SCORES = ("ap_iou", "ap_iou_f1", "ap_iou_f1_50", "kaggle")
POOLED = "pooled"


def write_report(gt_path: Path, folds_path: Path, predictions_dir: Path, models: list[str], out: str | Path,
                 plots: Path, options: KaggleOptions, workers: int | None = 1, progress: bool = False) -> list[str]:
    """Score every model's file in `predictions_dir` (`models`, or every CSV there) on `workers`
    processes (None: every core), write the metrics JSON and the plots; a line per model."""
    ontology = ontology_lib.load_for_dataset(gt_path.parent)
    workers = worker_count(workers)
    index = index_annotations(gt_path, ontology, workers=workers)
    fold_of_image = _folds(folds_path, index.image_ids)
    models = list(models) or sorted(p.stem for p in predictions_dir.glob("*.csv"))
    report, pooled, lines = {}, {}, []
    for model in models:
        folds, pooled[model] = _evaluate(predictions_dir / f"{model}.csv", index, fold_of_image, ontology, options,
                                         workers, progress)
        report[model] = {
            **{key: float(np.mean([f[key] for f in folds])) for key in SCORES},
            "folds": folds,
            "pooled": {"images": pooled[model].images, **_headline(pooled[model])},
        }
        lines.append(f"{model}: " + ", ".join(f"{key} {report[model][key]:.4f}" for key in SCORES)
                     + f" (mean of {len(folds)} folds)")
    io.write_json(out, report)
    write_plots(pooled, ontology, plots)
    return lines + [f"{len(models)} model(s) -> {out}, {plots}/"]


def _folds(path: Path, image_ids: list[str]) -> np.ndarray:
    """Fold of each ground-truth image, -1 for images the folds file leaves out; all 0 without a file."""
    if not Path(path).exists():
        return np.zeros(len(image_ids), np.int64)
    return folds_of_images(path, image_ids)


def fold_scores(path: Path, index: AnnotationIndex, fold_of_image: np.ndarray, ontology, options,
                workers: int = 1) -> list[dict]:
    """Each predicted fold's headline scores of a predictions file: {"fold", "images", *SCORES}."""
    return _evaluate(path, index, fold_of_image, ontology, options, workers)[0]


def _evaluate(path: Path, index: AnnotationIndex, fold_of_image: np.ndarray, ontology, options, workers: int = 1,
              progress: bool = False) -> tuple[list[dict], Evaluation]:
    """Each predicted fold's scores and the pooled evaluation of those folds' images, in one pass
    over the predictions and the ground truth."""
    accumulators, predicted = score_file(path, streamed_records(index, ontology), ontology, options, fold_of_image,
                                         "no Score column: cross-validation AP needs confidences", workers, progress,
                                         len(index.image_ids))
    kept = sorted(predicted - {-1})
    pooled = Accumulator.merge([accumulators[f] for f in kept]) if kept else Accumulator(ontology, options)
    # The rankings (`Accumulator.result`) of the pooled images and of each fold, side by side on the workers.
    groups = {POOLED: pooled, **{f: accumulators[f] for f in kept}}
    results = dict(zip(groups, ordered_map(_result, list(groups), groups, workers)))
    folds = [{"fold": f, "images": accumulators[f].images, **results[f]} for f in kept]
    return folds, results[POOLED]


def _result(accumulators: dict, name) -> Evaluation | dict:
    """The pooled images' evaluation (kept for the plots), or a fold's headline scores."""
    evaluation = accumulators[name].result()
    return evaluation if name == POOLED else _headline(evaluation)


def _headline(evaluation: Evaluation) -> dict:
    metrics = evaluation.metrics()
    return {key: metrics[key] for key in SCORES}


def write_plots(evaluations: dict[str, Evaluation], ontology, folder: Path) -> None:
    """Precision-recall curves per supercategory and per-category AP bars, as CSV data and PNG."""
    recall = np.linspace(0, 1, 101)
    curves = pd.DataFrame(
        [
            {"model": model, "supercategory": group, "recall": r, "precision": p}
            for model, evaluation in evaluations.items()
            for group in GROUPS
            for r, p in zip(recall, evaluation.pr_curve(group))
        ],
        columns=["model", "supercategory", "recall", "precision"],
    )
    categories = pd.DataFrame(
        [
            {"model": model, "category": name, "ap_iou": scores["ap_iou"], "ap_iou_f1": scores["ap_iou_f1"]}
            for model, evaluation in evaluations.items()
            for name, scores in evaluation.metrics()["categories"].items()
            if scores["ap_iou"] > -1
        ],
        columns=["model", "category", "ap_iou", "ap_iou_f1"],
    )
    io.write_csv(folder / "pr_curves.csv", curves)
    io.write_csv(folder / "per_category.csv", categories)

    figure, axes = plt.subplots(1, len(GROUPS), figsize=(5 * len(GROUPS), 4.5), sharey=True)
    for axis, group in zip(axes, GROUPS):
        for model, curve in curves[curves.supercategory == group].groupby("model", sort=False):
            axis.plot(curve.recall, curve.precision, label=f"{model} (AP {evaluations[model].ap_iou(classes=group):.3f})")
        axis.set(title=group, xlabel="recall", xlim=(0, 1), ylim=(0, 1.02))
        if evaluations:
            axis.legend(loc="lower left", fontsize="small")
    axes[0].set_ylabel("precision (mean over IoU 0.50:0.95)")
    _save(figure, folder / "pr_curves.png")

    shown = [c.name for c in ontology.categories if c.name in set(categories.category)]
    positions = np.arange(len(shown))
    width = 0.8 / max(1, len(evaluations))
    figure, axes = plt.subplots(2, 1, figsize=(max(6, 0.3 * len(shown) * max(1, len(evaluations))), 8), sharex=True)
    for axis, score in zip(axes, ("ap_iou", "ap_iou_f1")):
        for i, (model, rows) in enumerate(categories.groupby("model", sort=False)):
            axis.bar(positions + i * width, rows.set_index("category")[score].reindex(shown), width, label=model)
        axis.set(ylabel=f"{score} (out-of-fold, pooled)", ylim=(0, 1))
        if evaluations:
            axis.legend(fontsize="small")
    axes[1].set_xticks(positions + 0.4 - width / 2, shown, rotation=75, ha="right", fontsize="small")
    _save(figure, folder / "per_category.png")


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    with io.atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)

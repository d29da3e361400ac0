"""`python -m pipeline bench weights`: the ensemble's family weights chosen out of sample.

Weights picked on the out-of-fold files that the report then scores make the ensemble's margin over
the best family an in-sample number. Here every weight vector of a grid (the first model at 1, each
other one at every `--grid` value; params' own weights added) fuses the finished OOF files
(`predictions/oof/<model>.csv`, params' `ensemble` settings) and is scored per fold as the report
scores; for each fold, the vector with the best `--metric` on the other folds (mean of their
scores) is chosen and scored on that fold. The JSON gives every vector's scores per fold (`grid_scores`), per
held-out fold the chosen weights and the fold's scores of that ensemble, of the ensemble with params'
weights and of each family, then their means over the folds.

With `--runs A.json B.json ...` (finished `bench weights` JSONs of the same grid, one per training
seed) no OOF file is read: each vector's scores are averaged over every run's folds, and each run
is scored with the vector chosen on the other runs, so a choice made over seeds is also checked on
a seed it did not see.
"""
from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from pipeline import layout
from pipeline.data import ontology as ontology_lib
from pipeline.data.annotations import index_annotations
from pipeline.data.folds import folds_of_images
from pipeline.ensembling.ensemble import ensemble_files
from pipeline.ensembling.inputs import image_folder
from pipeline.errors import InputError
from pipeline.evaluation.report import SCORES, fold_scores
from pipeline.parallel import worker_count

PARAMS = "params"  # the ensemble with params' own weights


def add_arguments(parser) -> None:
    parser.add_argument("--models", nargs="+", help="OOF files' models (default: params ensemble.models, else "
                                                    "train.models); the first keeps weight 1")
    parser.add_argument("--grid", nargs="+", type=float, default=[0.03, 0.1, 0.3, 1.0],
                        help="weights tried for every model but the first (default: %(default)s)")
    parser.add_argument("--metric", choices=SCORES, default="ap_iou", help="what the weights are chosen for")
    parser.add_argument("--out-dir", help="where the fused files go, kept (default: a temporary folder, removed)")
    parser.add_argument("--runs", nargs="+", metavar="JSON",
                        help="combine these bench weights JSONs (one per training seed, same grid) instead: each run "
                             "scored with the weights chosen on the others")


def run(args, settings) -> dict:
    if args.runs:
        return combine_runs([_load_run(path) for path in args.runs], args.runs, args.metric)
    models = args.models or list(settings.ensemble.models or settings.train.models)
    if len(models) < 2 or any(w <= 0 for w in args.grid):
        raise InputError("bench weights: at least two models and positive --grid weights")
    missing = [str(layout.oof_predictions(m)) for m in models if not layout.oof_predictions(m).exists()]
    if missing:
        raise InputError(f"bench weights needs a finished run's out-of-fold files: {', '.join(missing)} not found "
                         "(dvc repro gather)")
    ontology = ontology_lib.load_for_dataset(settings.data_root)
    workers = worker_count(settings.report.workers)
    index = index_annotations(settings.train_csv(), ontology, workers=workers)
    fold_of_image = folds_of_images(settings.folds.out, index.image_ids)
    vectors = [(1.0, *rest) for rest in itertools.product(args.grid, repeat=len(models) - 1)]
    own = tuple(settings.ensemble.weight(m) / settings.ensemble.weight(models[0]) for m in models)
    tried = list(dict.fromkeys([*vectors, own]))  # the grid, then params' weights unless in it

    def scores(path: Path) -> dict[int, dict]:
        return {row["fold"]: row for row in fold_scores(path, index, fold_of_image, ontology, settings.evaluate.kaggle,
                                                        workers)}

    root = Path(args.out_dir).resolve() if args.out_dir else Path(tempfile.mkdtemp(prefix="bench_weights_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        fused = {}
        for vector in tried:
            out = root / f"{_name(vector)}.csv"
            ensemble_files([(layout.oof_predictions(m), w) for m, w in zip(models, vector)],
                           image_folder(settings.data_root, "oof", settings.data.layout), ontology, settings.ensemble,
                           out)
            fused[vector] = scores(out)
        families = {m: scores(layout.oof_predictions(m)) for m in models}
    finally:
        if not args.out_dir:
            shutil.rmtree(root, ignore_errors=True)
    return summary(models, vectors, own, fused, families, args)


def summary(models, vectors, own, fused: dict, families: dict, args) -> dict:
    """Per held-out fold: the grid's vector with the best mean metric on the other folds, and the
    fold's scores of it, of params' weights and of each family; then the means over the folds."""
    folds = sorted(fused[own])
    rows = []
    for fold in folds:
        others = [f for f in folds if f != fold]
        if not others:
            raise InputError("bench weights needs at least two scored folds: one to choose on, one to score")
        chosen = max(vectors, key=lambda v: np.mean([fused[v][f][args.metric] for f in others]))
        rows.append({"fold": fold, "chosen_weights": dict(zip(models, chosen)),
                     "held_out": {"chosen": _headline(fused[chosen][fold]), PARAMS: _headline(fused[own][fold]),
                                  **{m: _headline(families[m][fold]) for m in models}}})
    mean = {name: {key: float(np.mean([r["held_out"][name][key] for r in rows])) for key in SCORES}
            for name in rows[0]["held_out"]}
    best = max(models, key=lambda m: mean[m][args.metric])
    grid = {_name(v): {str(f): _headline(fused[v][f]) for f in folds} for v in fused}
    return {"models": models, "metric": args.metric, "grid": args.grid, "params_weights": dict(zip(models, own)),
            "grid_scores": grid, "folds": rows, "mean": mean, "best_family": best,
            "margin_over_best_family": {key: mean["chosen"][key] - mean[best][key] for key in SCORES}}


def _name(vector: tuple) -> str:
    return "_".join(f"{w:g}" for w in vector)


def _weights(models: list[str], name: str) -> dict:
    """The weights a `_name` stands for."""
    return dict(zip(models, map(float, name.split("_"))))


def _headline(row: dict) -> dict:
    return {key: row[key] for key in SCORES}


def combine_runs(runs: list[dict], names: list[str], metric: str) -> dict:
    """Every vector's mean scores over all runs' folds and its worst margin over the run's best
    family; then, per run, the vector with the best mean `metric` on the other runs, scored on it."""
    if len(runs) < 2:
        raise InputError("bench weights --runs needs at least two runs: one to choose on, one to score")
    first = runs[0]
    for run_, name in zip(runs[1:], names[1:]):
        if run_["models"] != first["models"] or set(run_["grid_scores"]) != set(first["grid_scores"]):
            raise InputError(f"not the same models and grid as {names[0]}", name)
    vectors = list(first["grid_scores"])

    def cells(vector: str, chosen_from: list[dict]) -> list[dict]:
        return [cell for run_ in chosen_from for cell in run_["grid_scores"][vector].values()]

    def margins(vector: str, run_: dict) -> list[dict]:
        best = {row["fold"]: row["held_out"][run_["best_family"]] for row in run_["folds"]}
        return [{key: run_["grid_scores"][vector][str(fold)][key] - best[fold][key] for key in SCORES}
                for fold in sorted(best)]

    table = {v: {"mean": _mean(cells(v, runs)), "worst_margin": _min([m for r in runs for m in margins(v, r)])}
             for v in vectors}
    held_out = []
    for index, (run_, name) in enumerate(zip(runs, names)):
        others = runs[:index] + runs[index + 1:]
        chosen = max(vectors, key=lambda v: np.mean([cell[metric] for cell in cells(v, others)]))
        held_out.append({"run": name, "chosen_weights": _weights(first["models"], chosen),
                         "scores": _mean(cells(chosen, [run_])), "best_family": run_["best_family"],
                         "margin_over_best_family": _mean(margins(chosen, run_))})
    best = max(vectors, key=lambda v: table[v]["mean"][metric])
    return {"runs": names, "models": first["models"], "metric": metric, "vectors": table,
            "best_over_runs": _weights(first["models"], best),
            "held_out_runs": held_out,
            "held_out_margin": {key: [row["margin_over_best_family"][key] for row in held_out] for key in SCORES}}


def _load_run(path: str) -> dict:
    try:
        result = json.loads(Path(path).read_text())
        grid = {vector: {fold: {key: float(cell[key]) for key in SCORES} for fold, cell in row.items()}
                for vector, row in result["grid_scores"].items()}
        folds = [{"fold": int(row["fold"]), "held_out": {result["best_family"]: row["held_out"][result["best_family"]]}}
                 for row in result["folds"]]
        return {"models": list(result["models"]), "grid_scores": grid, "folds": folds,
                "best_family": result["best_family"]}
    except FileNotFoundError:
        raise InputError("bench weights JSON not found", path) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(f"not a bench weights JSON with every score per fold ({error!r})", path) from None


def _mean(rows: list[dict]) -> dict:
    return {key: float(np.mean([row[key] for row in rows])) for key in SCORES}


def _min(rows: list[dict]) -> dict:
    return {key: float(min(row[key] for row in rows)) for key in SCORES}

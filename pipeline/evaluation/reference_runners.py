"""The reference evaluators run on COCO-format inputs: pycocotools' COCOeval (segm) and the official
FPEval. Nothing of the pipeline is imported here, so `bench evaluate` can time a reference as a
command of its own (`headline`: start-up, its imports, loading the JSON files, the evaluation), as
it times our `evaluate` command; each runner imports its own library only, inside it, so neither
command's time holds the other's imports.
"""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np


def run_cocoeval(dataset: dict, results: list):
    """COCOeval(segm) with default parameters, evaluated, accumulated and summarised."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return _run(COCO, COCOeval, dataset, results)


def run_fpeval(dataset: dict, results: list):
    """The official FPEval(segm) with default parameters, evaluated, accumulated and summarised."""
    if "float" not in np.__dict__:
        np.float = float  # fashionpedia 1.1 still uses the alias numpy 1.24 removed
    from fashionpedia.fp import Fashionpedia
    from fashionpedia.fp_eval import FPEval

    return _run(Fashionpedia, FPEval, dataset, results)


def _run(dataset_class, evaluator_class, dataset: dict, results: list):
    """Both references modify their inputs (pass fresh ones) and print progress (swallowed)."""
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = dataset_class()
        ground_truth.dataset = dataset
        ground_truth.createIndex()
        evaluator = evaluator_class(ground_truth, ground_truth.loadRes(results), "segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


# reference -> (runner, its headline AP: COCOeval's AP_IoU, FPEval's AP_IoU+F1)
HEADLINES = {
    "pycocotools": (run_cocoeval, lambda evaluator: float(evaluator.stats[0])),
    "fpeval": (run_fpeval, lambda evaluator: float(evaluator.results["AP"])),
}


def headline(reference: str, dataset_json: str, results_json: str) -> float:
    """A reference's headline AP of a ground-truth dataset and a results list in JSON files."""
    runner, score = HEADLINES[reference]
    with open(dataset_json) as dataset, open(results_json) as results:
        return score(runner(json.load(dataset), json.load(results)))

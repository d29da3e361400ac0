"""The official DeepFashion2 evaluation as `deepfashion2_test.py` runs it, on pycocotools.

The official `cocoeval.py` is upstream COCOeval except that `computeOks` uses the 294 sigmas; the
installed COCOeval reads `params.kpt_oks_sigmas` there, so setting it is the same computation.
Used by the tests (to check `pipeline.evaluation.deepfashion2.metrics` number for number) and by
`bench evaluate-df2`. pycocotools writes into its inputs: pass fresh ones.
"""
from __future__ import annotations

import contextlib
import io

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pipeline.evaluation.deepfashion2.metrics import SIGMAS


def load_ground_truth(dataset: dict):
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO()
        ground_truth.dataset = dataset
        ground_truth.createIndex()
    return ground_truth


def load_results(ground_truth, results: list):
    """loadRes: the result file's COCO object (its branch from the first entry's keys)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return ground_truth.loadRes(results)


def run_official(ground_truth, results, task: str, evaluator_class=None):
    """COCOeval(task) on every ground-truth image, evaluated, accumulated and summarised.

    `results`: a result list, or what `load_results` made of one (the official script loads the
    file once and runs the three tasks on it).
    """
    detections = load_results(ground_truth, results) if isinstance(results, list) else results
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = (evaluator_class or COCOeval)(ground_truth, detections, task)
        evaluator.params.imgIds = sorted(ground_truth.getImgIds())
        evaluator.params.kpt_oks_sigmas = SIGMAS
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator

"""`python -m pipeline report-df2`: the DeepFashion2 track's validation metrics in one JSON.

Scores `predict-df2`'s bbox, segm and keypoints results (`df2.predictions`) against the
validation annotations, and `retrieve`'s results against the validation split's query and gallery
ground truth, with `evaluate-df2`'s code; beside each retrieval top-k it puts chance: the expected
top-k of a random ranking of the gallery's ground-truth items (`chance_top_k`). Writes `df2.report`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pipeline import io, params
from pipeline.data import deepfashion2 as df2
from pipeline.evaluation import retrieval
from pipeline.evaluation.evaluate_df2 import evaluate_detection, evaluate_retrieval

DETECTION = {"bbox": "box", "segm": "mask", "keypoints": "landmark"}
RETRIEVAL = "retrieval.json"


def add_arguments(parser) -> None:
    pass


def chance_top_k(query: retrieval.Boxes, gallery: retrieval.Boxes, k: int) -> float:
    """The mean over query items with style > 0 of P(one of the k first items of a uniformly random
    order of the G gallery items is one of the m with the query's pair_id and style) = 1 - C(G-m, k)/C(G, k)."""
    size = len(gallery.image)
    chances = []
    for pair_id, style in zip(query.pair_id[query.style > 0].tolist(), query.style[query.style > 0].tolist()):
        matches = int(np.sum((gallery.pair_id == pair_id) & (gallery.style == style)))
        chances.append(1 - math.comb(size - matches, k) / math.comb(size, k) if k <= size else float(matches > 0))
    return float(np.mean(chances))


def report(root: Path, predictions: Path) -> dict:
    validation = root / "validation"
    metrics = {}
    for task, name in DETECTION.items():
        scores = evaluate_detection(task, validation / "annos", predictions / f"{task}.json")
        metrics.update({f"{name}_{key}": scores[key] for key in ("AP", "AP50", "AP75")})
    query_gt, gallery_gt = validation / "query_gt.json", validation / "gallery_gt.json"
    scores = evaluate_retrieval(query_gt, gallery_gt, predictions / RETRIEVAL)
    query = retrieval.read_query_gt(df2.load_json(query_gt), query_gt)
    gallery = retrieval.read_gallery_gt(df2.load_json(gallery_gt), gallery_gt)
    for k in retrieval.TOP_K:
        metrics[f"retrieval_top{k}"] = scores[f"top{k}"]
        metrics[f"retrieval_top{k}_chance"] = chance_top_k(query, gallery, k)
    metrics.update({"retrieval_queries": scores["queries"], "retrieval_missed": scores["missed"],
                    "gallery_items": len(gallery.image)})
    return metrics


def run(args) -> int:
    import json

    from pipeline.data.deepfashion2_params import load_df2

    section = load_df2(params.load(args.params), args.params)
    metrics = report(Path(section.root), Path(section.predictions))
    io.write_json(section.report, metrics)
    print(json.dumps(metrics, indent=2))
    print(f"report-df2: -> {section.report}")
    return 0

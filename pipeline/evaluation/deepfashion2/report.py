"""The DeepFashion2 track's validation metrics in one JSON (the `report-df2` stage).

Scores `predict-df2`'s bbox, segm and keypoints results (`df2.predictions`) against the
validation annotations, and `retrieve`'s results against the validation split's query and gallery
ground truth, with `evaluate-df2`'s code. Beside each retrieval top-k it puts chance, the expected
top-k of a uniformly random ranking of the gallery (`chance_top_k`): `_chance` ranks the gallery the
command ranked (the index's detected shop items) for the same query detections, so it measures the
match network against no ranking at all; `_chance_true_gallery` ranks the ground-truth gallery items
for every query, as perfect detections would. Writes `df2.report`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pipeline import layout
from pipeline.data.deepfashion2 import annotations as df2
from pipeline.evaluation.deepfashion2 import retrieval
from pipeline.evaluation.deepfashion2.metrics import box_iou
from pipeline.evaluation.deepfashion2.evaluate import evaluate_detection, evaluate_retrieval

DETECTION = {"bbox": "box", "segm": "mask", "keypoints": "landmark"}
RETRIEVAL = "retrieval.json"


def chance_top_k(matches: list[int], size: int, k: int) -> float:
    """The mean over queries of P(one of the first k of a uniformly random order of `size` gallery items is
    one of the query's `matches`) = 1 - C(size - m, k) / C(size, k)."""
    k = min(k, size)
    return float(np.mean([1 - math.comb(size - m, k) / math.comb(size, k) if size else 0.0 for m in matches]))


def true_gallery_matches(query: retrieval.Boxes, gallery: retrieval.Boxes) -> list[int]:
    """Per query item with style > 0: the gallery ground-truth items of its pair_id and style."""
    counted = query.style > 0
    return [int(np.sum((gallery.pair_id == p) & (gallery.style == s)))
            for p, s in zip(query.pair_id[counted].tolist(), query.style[counted].tolist())]


def ranked_gallery_matches(query: retrieval.Boxes, gallery: retrieval.Boxes, results: retrieval.RetrievalResults,
                           image_ids: np.ndarray, boxes: np.ndarray) -> list[int]:
    """Per query item with style > 0: the items of the ranked gallery (the index's detections: `image_ids`,
    `boxes` x1, y1, x2, y2) that would be a hit at any rank; 0 for a query item no result represents."""
    representative, _ = retrieval.representatives(query, results.query)
    xywh = np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]
    matches = []
    for item in np.flatnonzero(query.style > 0):
        hit = np.zeros(len(image_ids), bool)
        truth = np.flatnonzero((gallery.pair_id == query.pair_id[item]) & (gallery.style == query.style[item]))
        for row in truth if representative[item] >= 0 else []:
            same_image = image_ids == gallery.image[row]
            hit[same_image] |= box_iou(xywh[same_image], gallery.box[[row] * int(same_image.sum())]) >= retrieval.HIT_IOU
        matches.append(int(hit.sum()))
    return matches


def report(root: Path, predictions: Path) -> dict:
    validation = root / "validation"
    metrics = {}
    for task, name in DETECTION.items():
        scores = evaluate_detection(task, validation / "annos", predictions / f"{task}.json")
        metrics.update({f"{name}_{key}": scores[key] for key in ("AP", "AP50", "AP75")})
    query_gt, gallery_gt, results = validation / "query_gt.json", validation / "gallery_gt.json", predictions / RETRIEVAL
    scores = evaluate_retrieval(query_gt, gallery_gt, results)
    query = retrieval.read_query_gt(df2.load_json(query_gt), query_gt)
    gallery = retrieval.read_gallery_gt(df2.load_json(gallery_gt), gallery_gt)
    index = predictions / layout.DF2_GALLERY_INDEX
    image_ids, boxes = np.load(index / "image_ids.npy"), np.load(index / "boxes.npy")
    ranked = ranked_gallery_matches(query, gallery, retrieval.read_results(df2.load_json(results), results),
                                    image_ids, boxes)
    true = true_gallery_matches(query, gallery)
    for k in retrieval.TOP_K:
        metrics[f"retrieval_top{k}"] = scores[f"top{k}"]
        metrics[f"retrieval_top{k}_chance"] = chance_top_k(ranked, len(image_ids), k)
        metrics[f"retrieval_top{k}_chance_true_gallery"] = chance_top_k(true, len(gallery.image), k)
    metrics.update({"retrieval_queries": scores["queries"], "retrieval_missed": scores["missed"],
                    "ranked_gallery_items": len(image_ids), "true_gallery_items": len(gallery.image)})
    return metrics

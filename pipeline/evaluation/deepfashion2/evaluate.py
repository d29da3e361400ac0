"""The official DeepFashion2 evaluation of a submission file (the `evaluate-df2` command).

JSON: AP, AP50, AP75 (or top1 ... top20) as the official scripts, then per category and
per difficulty subset (`pipeline.evaluation.deepfashion2.metrics`, `pipeline.evaluation.deepfashion2.retrieval`).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.data.deepfashion2 import annotations as df2
from pipeline.data.images import image_size
from pipeline.evaluation.deepfashion2 import metrics as deepfashion2
from pipeline.evaluation.deepfashion2 import retrieval

TASKS = (*deepfashion2.TASKS, "retrieval")


def evaluate_detection(task: str, annos: str | Path, results_path: str | Path, images: str | Path | None = None,
                       visible_only: bool = False) -> dict:
    annotations = df2.read_annotations(annos)
    sizes = None
    if task == "segm":
        image_dir = Path(images) if images else Path(annos).parent / "image"
        sizes = [image_size(df2.image_path(image_dir, a.image_id)) for a in annotations]
    ground_truth = deepfashion2.GroundTruth.from_annotations(annotations, sizes, visible_only)
    results = deepfashion2.read_results(df2.load_json(Path(results_path)), results_path, ground_truth, task)
    metrics = deepfashion2.evaluate(ground_truth, results, task).metrics()
    if task == "keypoints":
        metrics["visible_only"] = visible_only
    return metrics


def evaluate_retrieval(query_gt: str | Path, gallery_gt: str | Path, results_path: str | Path) -> dict:
    query = retrieval.read_query_gt(df2.load_json(Path(query_gt)), query_gt)
    gallery = retrieval.read_gallery_gt(df2.load_json(Path(gallery_gt)), gallery_gt)
    results = retrieval.read_results(df2.load_json(Path(results_path)), results_path)
    return {"task": "retrieval", **retrieval.evaluate(query, gallery, results, query_gt)}

"""`python -m pipeline evaluate-df2`: the official DeepFashion2 evaluation of a submission file.

    --task bbox|segm|keypoints --annos VAL/annos --results RESULTS.json
    --task retrieval --query-gt QUERY.json --gallery-gt GALLERY.json --results RESULTS.json

Prints JSON: AP, AP50, AP75 (or top1 ... top20) as the official scripts, then per category and
per difficulty subset (`pipeline.evaluation.deepfashion2`, `pipeline.evaluation.retrieval`).
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline import io
from pipeline.data import deepfashion2 as df2
from pipeline.data.images import image_size
from pipeline.errors import InputError
from pipeline.evaluation import deepfashion2, retrieval

TASKS = (*deepfashion2.TASKS, "retrieval")


def add_arguments(parser) -> None:
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--results", required=True, help="result file in the official submission format")
    parser.add_argument("--annos", help="ground-truth annos/ folder (bbox, segm, keypoints)")
    parser.add_argument("--images", help="image folder, for the image sizes segm needs (default: ANNOS/../image)")
    parser.add_argument("--query-gt", help="retrieval query ground truth (query_gt.json layout)")
    parser.add_argument("--gallery-gt", help="retrieval gallery ground truth (gallery_gt.json layout)")
    parser.add_argument("--visible-only", action="store_true",
                        help="keypoints: score visible landmarks only (v = 2), as the 'vis' scores; the default "
                             "counts visible and occluded ones ('vis && hide', the official converter's output)")
    parser.add_argument("--out", help="also write the JSON here")


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


def run(args) -> int:
    if args.task == "retrieval":
        if not (args.query_gt and args.gallery_gt):
            raise InputError("--task retrieval needs --query-gt and --gallery-gt")
        metrics = evaluate_retrieval(args.query_gt, args.gallery_gt, args.results)
    else:
        if not args.annos:
            raise InputError(f"--task {args.task} needs --annos")
        metrics = evaluate_detection(args.task, args.annos, args.results, args.images, args.visible_only)
    if args.out:
        io.write_json(args.out, metrics)
    print(json.dumps(metrics, indent=2))
    return 0

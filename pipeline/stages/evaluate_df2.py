"""`python -m pipeline evaluate-df2`: the official DeepFashion2 evaluation of a submission file.

    --task bbox|segm|keypoints --annos VAL/annos --results RESULTS.json
    --task retrieval --query-gt QUERY.json --gallery-gt GALLERY.json --results RESULTS.json

Prints JSON: AP, AP50, AP75 (or top1 ... top20) as the official scripts, then per category and
per difficulty subset.
"""
from __future__ import annotations

TASKS = ("bbox", "segm", "keypoints", "retrieval")


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


def run(settings, args) -> int:
    import json

    from pipeline import io
    from pipeline.errors import InputError
    from pipeline.evaluation.deepfashion2.evaluate import evaluate_detection, evaluate_retrieval

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

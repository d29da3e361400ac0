"""`python -m pipeline infer IMAGE... --weights W.pt [W2.pt ...] --out DIR`: predictions for single photos.

No dataset, cache or params file needed. Per photo it prints every instance and writes
`DIR/<stem>.csv` and `DIR/<stem>.png` (a DeepFashion2 model: `DIR/<stem>.json` and the PNG with
landmarks; with `--gallery-index`, each item's best shop matches). Several weights files are fused
with `ensemble`'s method (params `ensemble`).
"""
from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG or PNG photos of any size")
    parser.add_argument("--weights", nargs="+", required=True, help="model.pt file(s) written by train")
    parser.add_argument("--out", required=True, help="folder for <stem>.png and <stem>.csv")
    parser.add_argument("--score-threshold", dest="infer.score_threshold", type=float,
                        help="keep instances scoring at least this (default: params infer.score_threshold)")
    parser.add_argument("--max-instances", dest="infer.max_instances", type=int,
                        help="keep at most this many instances per photo, best first (default: params infer.max_instances)")
    parser.add_argument("--max-size", dest="infer.max_size", type=int,
                        help="longest side the model sees (default: params cache.max_size; for a DeepFashion2 model "
                             "df2.cache_max_size)")
    parser.add_argument("--landmark-threshold", dest="infer.landmark_threshold", type=float,
                        help="DeepFashion2: draw the landmarks whose heatmap peak (a logit) is at least this "
                             "(default: params infer.landmark_threshold)")
    parser.add_argument("--gallery-index", help="DeepFashion2: a gallery index folder (retrieve --index, predict-df2's "
                                                "gallery_index) built with the same model file: list each item's "
                                                "most similar shop items")
    parser.add_argument("--top", dest="infer.top", type=int,
                        help="shop items listed per item with --gallery-index (default: params infer.top)")


def run(settings, args) -> int:
    from pipeline.inference.infer import infer_photos

    max_sizes = {"fashionpedia": settings.cache.max_size, "deepfashion2": settings.df2.cache_max_size}
    gallery_index = Path(args.gallery_index) if args.gallery_index else None
    for lines in infer_photos(args.images, [Path(w) for w in args.weights], Path(args.out), settings.infer,
                              settings.ensemble, gallery_index, max_sizes):
        print(lines, flush=True)
    return 0

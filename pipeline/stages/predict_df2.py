"""`python -m pipeline predict-df2`: the DeepFashion2 model on the validation split.

Runs `df2.model`'s model file (`models/<model>/deepfashion2/model.pt`) on every image of
`df2.cache_dir`/validation.h5 and writes, in `df2.predictions`, the official bbox, segm and keypoints
result files that `evaluate-df2` reads, and the gallery index of the shop photos' items that
`retrieve` reads (and reuses: same model file, cache and `df2.gallery_threshold`).
"""
from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--weights", help="the DeepFashion2 model file (default: the df2 model's model.pt)")


def run(settings, args) -> int:
    import torch

    from pipeline import layout
    from pipeline.inference.deepfashion2.retrieval import predict_split

    df2 = settings.df2
    if df2.threads:
        torch.set_num_threads(df2.threads)
    weights = Path(args.weights or layout.df2_model_file(df2.model))
    summary = predict_split(weights, df2.cache("validation"), Path(df2.predictions), df2.gallery_threshold,
                            progress=not args.no_progress)
    print(f"predict-df2: {summary}")
    return 0

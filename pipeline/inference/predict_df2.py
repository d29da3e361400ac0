"""`python -m pipeline predict-df2`: the DeepFashion2 model on the validation split.

Runs `df2.model`'s model file (`models/<model>/deepfashion2/model.pt`) on every image of
`df2.cache_dir`/validation.h5 and writes, in `df2.predictions`, the official bbox, segm and keypoints
result files that `evaluate-df2` reads, and the gallery index of the shop photos' items that
`retrieve` reads (and reuses: same model file, cache and `df2.gallery_threshold`).
"""
from __future__ import annotations

import time
from pathlib import Path

from pipeline import io, layout, params

INDEX = "gallery_index"


def add_arguments(parser) -> None:
    parser.add_argument("--weights", help="a match_rcnn model file (default: the df2 model's model.pt)")


def predict(weights: Path, cache: Path, out: Path, gallery_threshold: float) -> str:
    from pipeline.inference.deepfashion2 import detection_results, predict_items
    from pipeline.inference.retrieve import identity, open_match_rcnn, write_index

    model, config, reader, device = open_match_rcnn(weights, cache, "predict-df2")
    start = time.perf_counter()
    images = predict_items(model, reader, range(len(reader)), device)
    results = detection_results(images)
    for task, entries in results.items():
        io.write_json(out / f"{task}.json", entries)
    index = write_index(out / INDEX, images, identity(weights, reader, gallery_threshold), config.embedding_size)
    return (f"{len(images)} images, {len(results['bbox'])} detections, {len(index.embeddings)} gallery items "
            f"in {time.perf_counter() - start:.1f} s -> {out}")


def run(args) -> int:
    from pipeline.data.deepfashion2_params import load_df2

    df2 = load_df2(params.load(args.params), args.params)
    if df2.threads:
        import torch

        torch.set_num_threads(df2.threads)
    weights = Path(args.weights or layout.df2_model_file(df2.model))
    summary = predict(weights, df2.cache("validation"), Path(df2.predictions), df2.gallery_threshold)
    print(f"predict-df2: {summary}")
    return 0

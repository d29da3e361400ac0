"""`python -m pipeline predict --model NAME --fold K --split oof|test`: scored predictions.

`oof` predicts the images of fold K (held out when fold K's model was trained) and writes
`predictions/oof/<NAME>/fold<K>.csv`; `test` predicts the test cache with fold K's model into
`predictions/test/<NAME>/fold<K>.csv`. params.yaml `predict.tta` sets test-time augmentation,
`predict.batch_size` the images per model call, `predict.fp16` float16 autocast on CUDA and
`predict.threads` torch's CPU threads (0: its default).
"""
from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="a model name under params.yaml `models`")
    parser.add_argument("--fold", type=int, required=True, help="whose model predicts (and, for oof, which images)")
    parser.add_argument("--split", choices=("oof", "test"), required=True)
    parser.add_argument("--weights", help="default: models/<model>/fold<K>/model.pt")
    parser.add_argument("--out", help="default: predictions/<split>/<model>/fold<K>.csv")


def run(settings, args) -> int:
    import torch

    from pipeline import layout
    from pipeline.data import ontology
    from pipeline.data.cache_reader import open_cache
    from pipeline.data.folds import fold_indices, read_folds
    from pipeline.inference.predict import predict_file

    if settings.predict.threads:
        torch.set_num_threads(settings.predict.threads)
    if args.split == "oof":
        reader = open_cache(settings.cache.dir, settings.data_root, "train", settings.cache)
        indices = fold_indices(reader, read_folds(settings.folds.out), args.fold, train=False)
    else:
        reader = open_cache(settings.cache.dir, settings.data_root, "test", settings.cache)
        indices = range(len(reader))
    predict = settings.predict
    summary = predict_file(Path(args.weights or layout.model_file(args.model, args.fold)), reader, indices,
                           ontology.load_for_dataset(settings.data_root), predict.tta, predict.batch_size,
                           predict.fp16, Path(args.out or layout.fold_predictions(args.split, args.model, args.fold)))
    print(f"{args.model} fold {args.fold} {args.split}: {summary}")
    return 0

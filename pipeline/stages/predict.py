"""`python -m pipeline predict --model NAME --fold K --split oof|test`: scored predictions.

`oof` predicts the images of fold K (held out when fold K's model was trained) and writes
`predictions/oof/<NAME>/fold<K>.csv`; `test` predicts the test cache with fold K's model into
`predictions/test/<NAME>/fold<K>.csv`. `--fold all --split test`: the model trained on every image
(the papers' protocol; with the fashionpedia layout the test split is val2020) into
`predictions/all/<NAME>.csv`. params.yaml `predict.tta` sets test-time augmentation,
`predict.batch_size` the images per model call, `predict.fp16` float16 autocast on CUDA and
`predict.threads` torch's CPU threads (0: its default).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.layout import ALL_FOLDS as ALL
from pipeline.stages.train import fold_argument


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="a model name under params.yaml `models`")
    parser.add_argument("--fold", type=fold_argument, required=True,
                        help="whose model predicts (and, for oof, which images); `all`: the model trained on every "
                             "image, test split only")
    parser.add_argument("--split", choices=("oof", "test"), required=True)
    parser.add_argument("--weights", help="default: models/<model>/fold<K>/model.pt (fold all: models/<model>/all/)")
    parser.add_argument("--out", help="default: predictions/<split>/<model>/fold<K>.csv (fold all: "
                                      "predictions/all/<model>.csv)")


def run(settings, args) -> int:
    import torch

    from pipeline import layout
    from pipeline.data import ontology
    from pipeline.data.cache_reader import open_cache
    from pipeline.data.folds import fold_indices, read_folds
    from pipeline.errors import InputError
    from pipeline.inference.predict import predict_file

    if settings.predict.threads:
        torch.set_num_threads(settings.predict.threads)
    if args.split == "oof":
        if args.fold == ALL:
            raise InputError("--fold all trained on every image: none is out of fold (use --split test)")
        reader = open_cache(settings.cache.dir, settings.data_root, "train", settings.cache, settings.data.layout)
        indices = fold_indices(reader, read_folds(settings.folds.out), args.fold, train=False)
    else:
        reader = open_cache(settings.cache.dir, settings.data_root, "test", settings.cache, settings.data.layout)
        indices = range(len(reader))
    predict = settings.predict
    out = args.out or (layout.all_predictions(args.model) if args.fold == ALL else
                       layout.fold_predictions(args.split, args.model, args.fold))
    summary = predict_file(Path(args.weights or layout.model_file(args.model, args.fold)), reader, indices,
                           ontology.load_for_dataset(settings.data_root), predict.tta, predict.batch_size,
                           predict.fp16, Path(out), progress=not args.no_progress)
    print(f"{args.model} fold {args.fold} {args.split}: {summary}")
    return 0

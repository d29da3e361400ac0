"""`python -m pipeline train --model NAME [--fold K]`: train one model family on all folds but K.

The model's YAML (`configs/`) and training knobs come from params.yaml's `models.<NAME>`; outputs
go to `models/<NAME>/fold<K>/`. `--fold all` trains on every training image (the papers' protocol:
no out-of-fold predictions), into `models/<NAME>/all/`. A DeepFashion2 model (`df2.model`) trains on
DeepFashion2's train split (`df2.cache_dir`/train.h5), which has no folds, into
`models/<NAME>/deepfashion2/`. With `train.processes` > 1 it starts that many DDP processes itself
(one per GPU, or a second CPU core's worth); under `torchrun` it is one of them.
"""
from __future__ import annotations

import os
from pathlib import Path

from pipeline.layout import ALL_FOLDS as ALL


def fold_argument(text: str) -> int | str:
    return ALL if text == ALL else int(text)


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="a model name under params.yaml `models`")
    parser.add_argument("--fold", type=fold_argument,
                        help="the validation fold to hold out, or `all` to train on every image (not for DeepFashion2)")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (resumable later)")
    parser.add_argument("--out-dir", help="default: models/<model>/fold<K>")


def run(settings, args) -> int:
    import torch

    from pipeline.models.factory import family, load_config
    from pipeline.training import engine
    from pipeline.training.launch import run_distributed
    from pipeline.training.train import train_run

    entry = settings.model(args.model)
    processes = entry.train.processes
    if entry.train.sync_bn and int(os.environ.get("WORLD_SIZE", processes)) == 1:
        raise settings.error("train.sync_bn needs more than one training process (train.processes, one per GPU): "
                             "a single process has nothing to synchronise; set it false",
                             *settings.train_key(args.model, "sync_bn"))
    if processes > 1 and "WORLD_SIZE" not in os.environ:
        if torch.cuda.is_available() and processes > torch.cuda.device_count():
            raise settings.error(f"train.processes is {processes} but there are {torch.cuda.device_count()} GPUs",
                                 "train", "processes")
        return run_distributed(run, settings, args, processes)
    try:
        model_config = load_config(entry.config)
        dataset = family(model_config.family).dataset
        data = training_data(settings, args, entry, model_config, dataset)
        rank, _, _ = engine.distributed_setup()
        validate = validation(settings, args, entry, model_config, dataset) if rank == 0 else None
        line = train_run(entry, model_config, data, args.max_steps, not args.no_progress, validate,
                         {"model": args.model, "fold": args.fold})
        if rank == 0:
            print(line)
    finally:
        engine.close_distributed()  # every DDP process (torchrun's or our own) leaves its group; one process: a no-op
    return 0


def training_data(settings, args, entry, model_config, dataset: str):
    """The family's training data: the Fashionpedia cache's images of every fold but --fold (or all of
    them), or DeepFashion2's train split."""
    from pipeline import layout
    from pipeline.data import ontology
    from pipeline.data.cache_reader import open_cache
    from pipeline.data.folds import fold_indices, read_folds
    from pipeline.errors import InputError
    from pipeline.training.train import deepfashion2_data, fashionpedia_data

    if dataset == "deepfashion2":
        if args.fold is not None:
            raise InputError(f"{args.model} trains on DeepFashion2's train split, which has no folds: drop --fold")
        out_dir = Path(args.out_dir or layout.df2_model_dir(args.model))
        return deepfashion2_data(f"{args.model} (DeepFashion2)", out_dir, settings.df2.cache("train"), entry,
                                 model_config)
    if args.fold is None:
        raise InputError(f"train --model {args.model} needs --fold (a fold number, or `all`)")
    reader = open_cache(settings.cache.dir, settings.data_root, "train", settings.cache, settings.data.layout)
    if args.fold == ALL:
        indices, name = list(range(len(reader))), f"{args.model} (every fold)"
    else:
        indices = fold_indices(reader, read_folds(settings.folds.out), args.fold, train=True)
        name = f"{args.model} fold {args.fold}"
    out_dir = Path(args.out_dir or layout.model_dir(args.model, args.fold))
    return fashionpedia_data(name, out_dir, reader, indices, ontology.load_for_dataset(settings.data_root), entry,
                             model_config)


def validation(settings, args, entry, model_config, dataset: str):
    """The engine's `validate`: the first `validate_images` held-out images of --fold, scored as predict
    and the evaluator do; None when `validate_every` is 0."""
    import torch

    from pipeline.data import ontology
    from pipeline.data.cache_format import split_files
    from pipeline.data.cache_reader import open_cache
    from pipeline.data.folds import fold_indices, read_folds
    from pipeline.inference.validation import held_out

    if not entry.train.validate_every:
        return None
    if dataset != "fashionpedia":  # the shared `train` section's knob; report-df2 scores DeepFashion2's split
        print(f"{args.model}: no held-out scores during training (validate_every is for Fashionpedia folds)")
        return None
    papers = args.fold == ALL and settings.data.layout == "fashionpedia"
    if args.fold == ALL and not papers:
        raise settings.error(f"train.validate_every: held-out scores need a held-out Fashionpedia fold (or, with "
                             f"--fold all, the fashionpedia layout's val2020), not {args.model} --fold {args.fold}",
                             "train", "validate_every")
    if papers:  # the papers' protocol holds val2020 out: the test cache, scored against its annotations
        _, ground_truth = split_files(settings.data_root, "test", settings.data.layout)
        reader = open_cache(settings.cache.dir, settings.data_root, "test", settings.cache, settings.data.layout)
        indices = list(range(len(reader)))
    else:
        ground_truth = settings.train_csv()
        reader = open_cache(settings.cache.dir, settings.data_root, "train", settings.cache, settings.data.layout)
        indices = fold_indices(reader, read_folds(settings.folds.out), args.fold, train=False)
    indices = indices[: entry.train.validate_images or None]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return held_out(reader, indices, ground_truth, ontology.load_for_dataset(settings.data_root),
                    model_config.attribute_threshold, settings.evaluate.kaggle, device)

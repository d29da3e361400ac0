"""`python -m pipeline predict --model NAME --fold K --split oof|test`: scored predictions.

`oof` predicts the images of fold K (held out when fold K's model was trained) and writes
`predictions/oof/<NAME>/fold<K>.csv`; `test` predicts the test cache with fold K's model into
`predictions/test/<NAME>/fold<K>.csv`. Columns: the submission's plus `Score`; masks at each
image's original size. params.yaml `predict.tta` sets test-time augmentation (`tta.py`),
`predict.batch_size` the images per model call, `predict.fp16` float16 autocast on CUDA and
`predict.threads` torch's CPU threads (0: its default).
"""
from __future__ import annotations

import functools
from pathlib import Path

from pipeline import io, layout, params
from pipeline.errors import InputError

DEFAULTS = {"tta": {"hflip": False, "scales": [1.0], "merge_iou": 0.55, "max_detections": None},
            "batch_size": 1, "fp16": True, "threads": 0}


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="a model name under params.yaml `models`")
    parser.add_argument("--fold", type=int, required=True, help="whose model predicts (and, for oof, which images)")
    parser.add_argument("--split", choices=("oof", "test"), required=True)
    parser.add_argument("--weights", help="default: models/<model>/fold<K>/model.pt")
    parser.add_argument("--out", help="default: predictions/<split>/<model>/fold<K>.csv")


def load_model(path: str | Path):
    """(model in eval mode, its config) from a `model.pt` written by `train`: it needs no other file.

    Its `model` weights are the EMA when the run kept one (the trained ones, `raw_model`, are not used)."""
    from pipeline.models.factory import config_from_mapping, create_model
    from pipeline.training import checkpoint

    state = checkpoint.load(path)
    if "config" not in state or "model" not in state:
        raise InputError("not a model file written by train (last.pt is the resumable training state: "
                         "finish the run, or pass its model.pt)", path)
    config = config_from_mapping(state["config"], path)
    model = create_model(config)
    model.load_state_dict(state["model"])
    return model.eval(), config


def tta_config(args):
    """params.yaml's `predict.tta` (missing keys from DEFAULTS) as a TTAConfig."""
    from pipeline.inference.tta import config_from_params

    tta = params.section(args, "predict", DEFAULTS)["tta"]
    return config_from_params({**DEFAULTS["tta"], **tta} if isinstance(tta, dict) else tta, args.params)


def run(args) -> int:
    import torch

    from pipeline.data import ontology
    from pipeline.data.cache import open_reader
    from pipeline.data.folds import fold_indices, folds_file, read_folds

    from pipeline.inference.tta import predict_with_tta
    from pipeline.training.predict import predict

    tta = tta_config(args)
    weights = Path(args.weights or layout.model_file(args.model, args.fold))
    model, config = load_model(weights)
    if args.split == "oof":
        reader = open_reader(args, "train")
        folds = read_folds(folds_file(args.params))
        indices = fold_indices(reader, folds, args.fold, train=False)
    else:
        reader = open_reader(args, "test")
        indices = range(len(reader))
    labels = ontology.load_for_dataset(params.data_root(args))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = params.section(args, "predict", DEFAULTS)
    for key, least in (("batch_size", 1), ("threads", 0)):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < least:
            raise InputError(f"predict: {key} must be an integer >= {least}, got {cfg[key]!r}", args.params)
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    # A single plain view goes through the model `batch_size` images at a time; TTA image by image.
    forward = None if tta.views() == [(1.0, False)] else functools.partial(predict_with_tta, config=tta)
    frame = predict(model, reader, indices, labels, config.attribute_threshold, device, forward,
                    int(cfg["batch_size"]), bool(cfg["fp16"]))
    out = Path(args.out or layout.fold_predictions(args.split, args.model, args.fold))
    io.write_csv(out, frame)
    print(f"{args.model} fold {args.fold} {args.split}: {len(frame)} predictions for {len(indices)} images "
          f"({frame.ClassId.nunique() if len(frame) else 0} classes, {len(tta.views())} TTA views) -> {out}")
    return 0


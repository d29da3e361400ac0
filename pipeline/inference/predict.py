"""`python -m pipeline predict --model NAME --fold K --split oof|test`: scored predictions.

`oof` predicts the images of fold K (held out when fold K's model was trained) and writes
`predictions/oof/<NAME>/fold<K>.csv`; `test` predicts the test cache with fold K's model into
`predictions/test/<NAME>/fold<K>.csv`. Columns: the submission's plus `Score`; masks at each
image's original size. params.yaml `predict.tta` sets test-time augmentation (`tta.py`),
`predict.batch_size` the images per model call and `predict.fp16` float16 autocast on CUDA.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import io, layout, params
from pipeline.errors import InputError
from pipeline.inference.postprocess import COLUMNS, rows_for_image

DEFAULTS = {"tta": {"hflip": False, "scales": [1.0], "merge_iou": 0.55, "max_detections": None},
            "batch_size": 1, "fp16": True}


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


def predict(model, reader, indices, ontology, attribute_threshold: float, device="cpu", tta=None,
            batch_size: int = 1, fp16: bool = True) -> pd.DataFrame:
    """Predictions for reader images `indices` as a DataFrame of COLUMNS sorted by ImageId; `tta`: a
    TTAConfig or None.

    `batch_size` images go through the model at once (without TTA; with it, image by image). On
    CUDA, `fp16` runs the model under float16 autocast, and masks are pasted and thresholded on
    the GPU (`paste_rle_tensor`): only each mask's binary window comes back to the CPU.
    """
    import contextlib

    import torch

    model.to(device)
    on_gpu = torch.device(device).type == "cuda"
    precision = torch.autocast("cuda", dtype=torch.float16) if on_gpu and fp16 else contextlib.nullcontext()
    # Rows sorted by ImageId: every prediction file is, so later stages read it image by image.
    order = sorted(indices, key=lambda i: reader.image_ids[i])
    rows = []
    with torch.inference_mode(), precision:
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            for i, output in zip(batch, _outputs(model, reader, batch, device, tta)):
                output = {k: v if k == "masks" and on_gpu else v.float().cpu().numpy() for k, v in output.items()}
                rows += rows_for_image(reader.image_ids[i], output, tuple(reader.orig_sizes[i].tolist()), ontology,
                                       attribute_threshold)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _outputs(model, reader, batch, device, tta) -> list[dict]:
    from pipeline.inference.tta import predict_with_tta
    from pipeline.training.data import image_to_tensor

    images = [image_to_tensor(reader.image(i)).to(device) for i in batch]
    if tta is None:
        return model(images)
    return [predict_with_tta(model, image, tta) for image in images]


def run(args) -> int:
    import torch

    from pipeline.data import ontology
    from pipeline.data.cache import open_reader
    from pipeline.data.folds import fold_indices, folds_file, read_folds

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
    if isinstance(cfg["batch_size"], bool) or not isinstance(cfg["batch_size"], int) or cfg["batch_size"] < 1:
        raise InputError(f"predict: batch_size must be an integer >= 1, got {cfg['batch_size']!r}", args.params)
    frame = predict(model, reader, indices, labels, config.attribute_threshold, device, tta, int(cfg["batch_size"]),
                    bool(cfg["fp16"]))
    out = Path(args.out or layout.fold_predictions(args.split, args.model, args.fold))
    io.write_csv(out, frame)
    print(f"{args.model} fold {args.fold} {args.split}: {len(frame)} predictions for {len(indices)} images "
          f"({frame.ClassId.nunique() if len(frame) else 0} classes, {len(tta.views())} TTA views) -> {out}")
    return 0


"""A trained model's scored predictions of cache images, as the rows of a prediction file.

Used by the predict stage (with test-time augmentation through `forward`) and by validation during
training (`validation.py`). Columns: the submission's plus `Score`; masks at each image's original
size; rows sorted by ImageId, as every prediction file is, so later stages read it image by image.
"""
from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path

import pandas as pd
import torch

from pipeline import io
from pipeline.data.prediction_rows import COLUMNS
from pipeline.inference.rows import rows_for_image
from pipeline.errors import InputError
from pipeline.inference.config import TTAConfig
from pipeline.inference.tta import predict_with_tta
from pipeline.models.factory import config_from_mapping, create_model
from pipeline.progress import bar
from pipeline.training import checkpoint
from pipeline.training.data import image_to_tensor


def load_model(path: str | Path):
    """(model in eval mode, its config) from a `model.pt` written by `train`: it needs no other file.

    Its `model` weights are the EMA when the run kept one (the trained ones, `raw_model`, are not used)."""
    state = checkpoint.load(path)
    if "config" not in state or "model" not in state:
        raise InputError("not a model file written by train (last.pt is the resumable training state: "
                         "finish the run, or pass its model.pt)", path)
    if "capped" in state:  # said wherever the weights are used, so a rehearsal's are never taken for trained ones
        print(f"warning: {path}: {state['capped']}", file=sys.stderr)
    config = config_from_mapping(state["config"], path)
    model = create_model(config)
    model.load_state_dict(state["model"])
    return model.eval(), config


def predict(model, reader, indices, ontology, attribute_threshold: float, device="cpu", forward=None,
            batch_size: int = 1, fp16: bool = True, progress: bool = False, description: str = "predict"
            ) -> pd.DataFrame:
    """Predictions for reader images `indices` as a DataFrame of COLUMNS sorted by ImageId.

    `forward(model, image)`: one image's outputs (the predict stage's test-time augmentation);
    without it, `batch_size` images go through the model at once. On CUDA, `fp16` runs the model
    under float16 autocast, and masks are pasted and thresholded on the GPU (`paste_rle_tensor`):
    only each mask's binary window comes back to the CPU.
    """
    model.to(device)
    on_gpu = torch.device(device).type == "cuda"
    precision = torch.autocast("cuda", dtype=torch.float16) if on_gpu and fp16 else contextlib.nullcontext()
    # Rows sorted by ImageId: every prediction file is, so later stages read it image by image.
    order = sorted(indices, key=lambda i: reader.image_ids[i])
    rows = []
    with torch.inference_mode(), precision, bar(progress, len(order), description) as counter:
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            for i, output in zip(batch, _outputs(model, reader, batch, device, forward)):
                output = {k: v if k == "masks" and on_gpu else v.float().cpu().numpy() for k, v in output.items()}
                rows += rows_for_image(reader.image_ids[i], output, tuple(reader.orig_sizes[i].tolist()), ontology,
                                       attribute_threshold)
            counter.update(len(batch))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _outputs(model, reader, batch, device, forward) -> list[dict]:
    images = [image_to_tensor(reader.image(i)).to(device) for i in batch]
    if forward is None:
        return model(images)
    return [forward(model, image) for image in images]


def predict_file(weights: Path, reader, indices, ontology, tta: TTAConfig, batch_size: int, fp16: bool,
                 out: Path, progress: bool = False) -> str:
    """The model file's predictions of reader images `indices` into `out`; a summary line."""
    model, config = load_model(weights)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # A single plain view goes through the model `batch_size` images at a time; TTA image by image.
    forward = None if tta.views() == [(1.0, False)] else functools.partial(predict_with_tta, config=tta)
    frame = predict(model, reader, indices, ontology, config.attribute_threshold, device, forward, batch_size, fp16,
                    progress, f"predict {Path(out).name}")
    io.write_csv(out, frame)
    return (f"{len(frame)} predictions for {len(indices)} images "
            f"({frame.ClassId.nunique() if len(frame) else 0} classes, {len(tta.views())} TTA views) -> {out}")

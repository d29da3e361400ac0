"""A model's predictions for cache images, as the rows of a prediction file.

Used by validation during training (`validation.py`) and by the predict stage
(`pipeline.inference.predict`, which adds test-time augmentation through `forward`).
"""
from __future__ import annotations

import pandas as pd

from pipeline.data.prediction_rows import COLUMNS, rows_for_image
from pipeline.training.data import image_to_tensor


def predict(model, reader, indices, ontology, attribute_threshold: float, device="cpu", forward=None,
            batch_size: int = 1, fp16: bool = True) -> pd.DataFrame:
    """Predictions for reader images `indices` as a DataFrame of COLUMNS sorted by ImageId.

    `forward(model, image)`: one image's outputs (the predict stage's test-time augmentation);
    without it, `batch_size` images go through the model at once. On CUDA, `fp16` runs the model
    under float16 autocast, and masks are pasted and thresholded on the GPU (`paste_rle_tensor`):
    only each mask's binary window comes back to the CPU.
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
            for i, output in zip(batch, _outputs(model, reader, batch, device, forward)):
                output = {k: v if k == "masks" and on_gpu else v.float().cpu().numpy() for k, v in output.items()}
                rows += rows_for_image(reader.image_ids[i], output, tuple(reader.orig_sizes[i].tolist()), ontology,
                                       attribute_threshold)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _outputs(model, reader, batch, device, forward) -> list[dict]:
    images = [image_to_tensor(reader.image(i)).to(device) for i in batch]
    if forward is None:
        return model(images)
    return [forward(model, image) for image in images]

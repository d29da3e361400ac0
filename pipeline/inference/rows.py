"""Model outputs -> prediction rows: masks pasted back at the original image size.

A mask is resampled only inside its own bounding window and encoded in place
(`rle.encode` with a window), so a 5000 px photo with 100 detections never holds 100 full-size
masks: memory and time follow the objects' sizes, not the image's.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pipeline.data import rle
from pipeline.data.ontology import Ontology
from pipeline.data.prediction_rows import format_attribute_scores


def paste_rle(probability: np.ndarray, height: int, width: int, threshold: float = 0.5) -> str:
    """Kaggle RLE at height x width of a soft mask given at another resolution (bilinear)."""
    h, w = probability.shape
    foreground = probability >= threshold
    rows = np.flatnonzero(foreground.any(axis=1))
    if rows.size == 0:
        return ""
    cols = np.flatnonzero(foreground.any(axis=0))
    scale_y, scale_x = height / h, width / w
    # The window at the original size covering the foreground's low-resolution pixels, plus one.
    y0 = max(int(np.floor((rows[0] - 1) * scale_y)), 0)
    y1 = min(int(np.ceil((rows[-1] + 2) * scale_y)), height)
    x0 = max(int(np.floor((cols[0] - 1) * scale_x)), 0)
    x1 = min(int(np.ceil((cols[-1] + 2) * scale_x)), width)
    # Destination pixel centre (x + x0 + 0.5) samples source (x + x0 + 0.5) / scale - 0.5.
    inverse = np.array([[1 / scale_x, 0, (x0 + 0.5) / scale_x - 0.5], [0, 1 / scale_y, (y0 + 0.5) / scale_y - 0.5]])
    window = cv2.warpAffine(probability.astype(np.float32), inverse, (x1 - x0, y1 - y0),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return rle.encode(window >= threshold, y0, x0, height, width)


def paste_rle_tensor(probability, height: int, width: int, threshold: float = 0.5) -> str:
    """`paste_rle` on the tensor's own device (a GPU): the window is resampled and thresholded
    there, and only its binary pixels come back to the CPU, never a full-image float mask.

    Bilinear with edge replication as `paste_rle`'s cv2 call samples it (destination pixel centre
    (x + 0.5) reads source (x + 0.5) / scale - 0.5); cv2 rounds the sample positions to 1/32 pixel,
    this does not, so a pixel whose value lies within that rounding of the threshold may differ.
    """
    h, w = probability.shape
    foreground = probability >= threshold
    rows = torch.nonzero(foreground.any(dim=1)).flatten()
    if rows.numel() == 0:
        return ""
    cols = torch.nonzero(foreground.any(dim=0)).flatten()
    first_row, last_row, first_col, last_col = (int(v) for v in torch.stack([rows[0], rows[-1], cols[0], cols[-1]]))
    scale_y, scale_x = height / h, width / w
    y0 = max(int(np.floor((first_row - 1) * scale_y)), 0)
    y1 = min(int(np.ceil((last_row + 2) * scale_y)), height)
    x0 = max(int(np.floor((first_col - 1) * scale_x)), 0)
    x1 = min(int(np.ceil((last_col + 2) * scale_x)), width)
    device = probability.device
    source_y = (torch.arange(y0, y1, device=device, dtype=torch.float32) + 0.5) / scale_y - 0.5
    source_x = (torch.arange(x0, x1, device=device, dtype=torch.float32) + 0.5) / scale_x - 0.5
    # grid_sample's normalised coordinates (align_corners=False): -1 and 1 are the outer pixel edges.
    grid_y, grid_x = torch.meshgrid((source_y + 0.5) / h * 2 - 1, (source_x + 0.5) / w * 2 - 1, indexing="ij")
    window = F.grid_sample(probability.float()[None, None], torch.stack([grid_x, grid_y], -1)[None],
                           mode="bilinear", padding_mode="border", align_corners=False)[0, 0]
    return rle.encode((window >= threshold).cpu().numpy(), y0, x0, height, width)


def rows_for_image(image_id: str, output: dict, orig_size: tuple[int, int], ontology: Ontology,
                   attribute_threshold: float = 0.5, mask_threshold: float = 0.5) -> list[tuple]:
    """Submission rows (COLUMNS) of one image's detections; empty masks are dropped. Masks as a
    numpy array are pasted on the CPU (`paste_rle`), as a tensor on its device (`paste_rle_tensor`)."""
    height, width = orig_size
    paste = paste_rle if isinstance(output["masks"], np.ndarray) else paste_rle_tensor
    rows = []
    for mask, label, score, attributes in zip(output["masks"], output["labels"], output["scores"], output["attributes"]):
        encoded = paste(mask[0] if mask.ndim == 3 else mask, height, width, mask_threshold)
        if encoded:
            ids = ontology.vector_to_attributes(attributes, attribute_threshold)
            rows.append((image_id, encoded, int(label), ",".join(map(str, ids)), float(score),
                         format_attribute_scores(attributes, ontology)))
    return rows

"""Read a photo and bring it and its instance masks to a working resolution (longest side `max_size`).

Images are only ever shrunk: upscaling would add bytes and no information, and the models'
own transforms resize anyway. Masks shrink with area interpolation and a 0.5 coverage threshold,
which keeps thin parts (straps, zips) that nearest-neighbour sampling would cut into dashes.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import InputError

# EXIF rotation is ignored: Kaggle's Height, Width and RLE masks refer to the stored pixel grid.
_DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
# Area-interpolated coverage of a 0/255 mask at or above this is foreground (coverage >= 0.5).
_COVERAGE_THRESHOLD = 128


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to an (H, W, 3) RGB uint8 array; InputError if missing or corrupt."""
    path = Path(path)
    try:
        data = np.fromfile(path, np.uint8)
    except FileNotFoundError:
        raise InputError("image file not found", path) from None
    except OSError as error:
        raise InputError(f"cannot read image file ({error.strerror})", path) from None
    return decode_image(data, path)


def decode_image(data: np.ndarray, path: str | Path = "<bytes>") -> np.ndarray:
    """Encoded image bytes (uint8 1-D) -> (H, W, 3) RGB uint8; `path` only names it in errors."""
    bgr = cv2.imdecode(data, _DECODE_FLAGS) if data.size else None
    if bgr is None:
        raise InputError("cannot decode image (corrupt, truncated or not an image)", path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) RGB uint8 -> JPEG bytes as a uint8 1-D array."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {rgb.shape}")
    return data.ravel()


def target_size(height: int, width: int, max_size: int) -> tuple[int, int]:
    """(height, width) scaled so the longest side is `max_size`; unchanged if already smaller."""
    scale = max_size / max(height, width)
    if scale >= 1:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-interpolated resize of an (H, W, C) image to `size` = (height, width)."""
    if image.shape[:2] == tuple(size):
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Shrink a {0,1} mask to `size`: pixels at least half covered are foreground.

    An instance that no pixel covers by half (a sub-pixel button, a hairline strap) keeps the
    pixels covered at least half as much as its best-covered one, so no annotated instance
    disappears. Returns a uint8 {0,1} array of shape `size`.
    """
    if mask.shape == tuple(size):
        return (mask != 0).view(np.uint8)
    # cv2 wants C order; decoded masks are column-major, so resize the transpose, which is C order.
    transposed = mask.T
    dsize = (size[0], size[1])
    coverage = cv2.resize(transposed * np.uint8(255), dsize, interpolation=cv2.INTER_AREA)
    resized = coverage >= _COVERAGE_THRESHOLD
    if not resized.any() and transposed.any():
        # 8-bit coverage rounds objects under ~1/500 of a pixel to 0: measure in float here.
        coverage = cv2.resize(transposed.astype(np.float32), dsize, interpolation=cv2.INTER_AREA)
        resized = coverage >= coverage.max() / 2
    return resized.view(np.uint8).T


def mask_box(mask: np.ndarray) -> np.ndarray:
    """[x1, y1, x2, y2] float32 of a 2-D mask's foreground, pixel edges (x2 = last column + 1).

    All zeros for an empty mask.
    """
    columns = np.flatnonzero(mask.any(axis=0))
    if not columns.size:
        return np.zeros(4, np.float32)
    rows = np.flatnonzero(mask.any(axis=1))
    return np.array([columns[0], rows[0], columns[-1] + 1, rows[-1] + 1], np.float32)

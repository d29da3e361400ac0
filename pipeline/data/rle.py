"""Kaggle run-length encoding of binary masks.

Kaggle's convention: space-separated `start length` pairs, starts 1-indexed, pixels numbered down
each column first (column-major). Decoding builds the whole column-major array with one
`np.repeat` over alternating 0/1 runs, so its cost is a memset of the image, not a Python loop.
"""
from __future__ import annotations

import re

import numpy as np
from pycocotools import mask as coco_mask

_TOKENS = re.compile(r"\s*\d+(?:\s+\d+)*\s*")


class RLEError(ValueError):
    """A malformed run-length string."""


def parse(rle: str, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate `rle` for an image of `height` x `width`; return 0-based starts and lengths."""
    if height <= 0 or width <= 0:
        raise RLEError(f"image size must be positive, got {height}x{width}")
    if not rle or rle.isspace():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # Digits and single spaces, as every writer writes them, pass the cheap test; the rest the full one.
    if not (rle.isascii() and rle.replace(" ", "").isdigit()) and _TOKENS.fullmatch(rle) is None:
        raise RLEError("RLE must be non-negative integers separated by spaces")
    values = np.fromstring(rle, dtype=np.int64, sep=" ")
    if values.size % 2:
        raise RLEError(f"RLE has an odd number of values ({values.size})")
    starts = values[0::2] - 1
    lengths = values[1::2]
    if (starts < 0).any():
        raise RLEError("RLE start 0: starts are 1-indexed")
    if (lengths == 0).any():
        raise RLEError(f"RLE run of length 0 at pair {int(np.argmax(lengths == 0)) + 1}")
    ends = starts + lengths
    bad = np.flatnonzero(starts[1:] < ends[:-1])
    if bad.size:
        raise RLEError(f"RLE runs out of order or overlapping at pair {int(bad[0]) + 2}")
    if ends[-1] > height * width:
        raise RLEError(f"RLE run ends at pixel {int(ends[-1])}, beyond {height}x{width}={height * width}")
    return starts, lengths


def decode(rle: str, height: int, width: int) -> np.ndarray:
    """Decode to a uint8 {0,1} array of shape (height, width) (a Fortran-ordered view)."""
    starts, lengths = parse(rle, height, width)
    return counts_to_mask(runs_to_counts(starts, lengths, height * width), height, width)


def encode(mask: np.ndarray, top: int = 0, left: int = 0, height: int | None = None, width: int | None = None) -> str:
    """Kaggle RLE of a 2-D mask (non-zero = foreground); empty mask -> ''.

    With `top`, `left`, `height`, `width`, `mask` is a window placed at (top, left) in an image of
    height x width that is empty elsewhere: large masks are encoded without building them whole.
    """
    return runs_to_string(*mask_to_runs(mask, top, left, height, width))


def runs_to_string(starts: np.ndarray, lengths: np.ndarray) -> str:
    """Kaggle RLE of 0-based column-major runs (`parse`'s inverse)."""
    pairs = np.empty(2 * starts.size, np.int64)
    pairs[0::2] = starts + 1
    pairs[1::2] = lengths
    return " ".join(map(str, pairs.tolist()))


def mask_to_runs(
    mask: np.ndarray, top: int = 0, left: int = 0, height: int | None = None, width: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """0-based column-major starts and lengths of the foreground runs (see `encode` for the window)."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    rows, cols = mask.shape
    height = rows if height is None else height
    width = cols if width is None else width
    if top < 0 or left < 0 or top + rows > height or left + cols > width:
        raise ValueError(f"window {rows}x{cols} at ({top}, {left}) does not fit in {height}x{width}")
    # A background row above and below each column keeps runs from spilling into the next column.
    padded = np.zeros((rows + 2, cols), bool)
    np.not_equal(mask, 0, out=padded[1:-1])
    # Transitions between vertical neighbours, listed column by column (column-major order).
    edges = np.flatnonzero((padded[1:] != padded[:-1]).T)
    column, row = np.divmod(edges[0::2], rows + 1)
    starts = (left + column) * height + top + row
    ends = starts + (edges[1::2] - edges[0::2])
    # Runs that touch across a column boundary (full-height windows) are one run in Kaggle's form.
    first = np.ones(starts.size, bool)
    first[1:] = starts[1:] != ends[:-1]
    last = np.roll(first, -1)
    return starts[first], ends[last] - starts[first]


def runs_to_counts(starts: np.ndarray, lengths: np.ndarray, size: int) -> np.ndarray:
    """Alternating background/foreground run lengths covering `size` pixels (COCO's counts)."""
    counts = np.empty(2 * starts.size + 1, np.int64)
    counts[1::2] = lengths
    if starts.size:
        counts[0] = starts[0]
        counts[2:-1:2] = starts[1:] - (starts[:-1] + lengths[:-1])
        counts[-1] = size - starts[-1] - lengths[-1]
    else:
        counts[0] = size
    return counts


def counts_to_runs(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0-based starts and lengths of the foreground runs of alternating background/foreground run
    lengths (`runs_to_counts`' inverse). Empty runs are dropped and runs that touch are joined, as
    `mask_to_runs` gives them."""
    counts = np.asarray(counts, np.int64)
    ends = np.cumsum(counts)
    starts, lengths = ends[0:-1:2], counts[1::2]
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    # A run that begins where the previous one ends continues it (an empty background run between).
    first = np.ones(starts.size, bool)
    first[1:] = starts[1:] != starts[:-1] + lengths[:-1]
    group = np.cumsum(first) - 1
    return starts[first], np.bincount(group, lengths, minlength=int(first.sum())).astype(np.int64)


def coco_string_counts(counts: str | bytes) -> np.ndarray:
    """The run lengths of a pycocotools compressed RLE string (its `rleFrString`, vectorised).

    Each value is written in 5-bit groups, low first, as characters 48 + group (+ 32 when another
    group follows); the last group's bit 16 is the sign. From the fourth value on, a value is stored
    as its difference from the value two places before.
    """
    data = np.frombuffer(counts.encode("ascii") if isinstance(counts, str) else counts, np.uint8).astype(np.int64)
    data -= 48
    if ((data < 0) | (data > 63)).any():
        raise RLEError("compressed RLE counts hold characters outside '0'..'o'")
    more = (data & 0x20) != 0
    if data.size and more[-1]:
        raise RLEError("compressed RLE counts end in the middle of a value")
    ends = np.flatnonzero(~more)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    value_of = np.repeat(np.arange(ends.size), ends - starts + 1)
    group = np.arange(data.size) - starts[value_of]
    if data.size and group.max() > 11:
        raise RLEError("compressed RLE counts hold a value too large for an image")
    values = np.add.reduceat((data & 0x1F) << (5 * group), starts) if ends.size else np.zeros(0, np.int64)
    negative = (data[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (group[ends[negative]] + 1))
    values[3::2] = np.cumsum(values[1::2])[1:]
    values[2::2] = np.cumsum(values[2::2])
    return values


def counts_to_mask(counts: np.ndarray, height: int, width: int) -> np.ndarray:
    """Expand alternating background/foreground run lengths into a (height, width) uint8 mask."""
    values = np.zeros(counts.size, np.uint8)
    values[1::2] = 1
    return np.repeat(values, counts).reshape(width, height).T


def mask_to_counts(mask: np.ndarray) -> np.ndarray:
    """COCO-style uncompressed counts of a 2-D mask, column-major, starting with background."""
    starts, lengths = mask_to_runs(mask)
    return runs_to_counts(starts, lengths, mask.size)


def to_coco(rle: str, height: int, width: int) -> dict:
    """Kaggle RLE -> pycocotools compressed RLE dict (`{"size": [h, w], "counts": bytes}`)."""
    starts, lengths = parse(rle, height, width)
    counts = runs_to_counts(starts, lengths, height * width)
    return coco_mask.frPyObjects({"size": [height, width], "counts": counts.tolist()}, height, width)


def from_coco(coco_rle: dict) -> str:
    """pycocotools RLE dict (compressed or uncompressed counts) -> Kaggle RLE string."""
    height, width = coco_rle["size"]
    if not isinstance(coco_rle["counts"], (bytes, str)):
        coco_rle = coco_mask.frPyObjects(coco_rle, height, width)
    return encode(coco_mask.decode(coco_rle))

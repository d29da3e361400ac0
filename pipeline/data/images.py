"""Image files' sizes from their headers.

PIL reads the header only, no pixel data, so sizing Kaggle's 3,200 test photos takes seconds. Its
size is the stored pixel grid, EXIF rotation ignored: the grid Kaggle's RLE masks refer to (as in
`pipeline.data.resize`).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from pipeline.errors import InputError


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file from its header."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise InputError("image file not found", path) from None
    except (UnidentifiedImageError, OSError):
        raise InputError("cannot read the image header (corrupt, truncated or not an image)", path) from None
    return height, width

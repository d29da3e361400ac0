"""The test images a submission must cover, and their sizes, read from the image headers.

The list is the test cache's (`pipeline.data.cache_format.split_files`): the ImageIds of
`sample_submission.csv` when the dataset has one (Kaggle scores exactly those), else every
`test/*.jpg`. Sizes come from the JPEG headers (`pipeline.data.images.image_size`).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.data.annotations import read_csv_strict
from pipeline.data.cache_format import split_files
from pipeline.data.images import image_size
from pipeline.data.resize import target_size
from pipeline.errors import InputError


def submission_images(root: str | Path) -> dict[str, tuple[int, int]]:
    """ImageId -> original (height, width) of every test image, ids sorted."""
    image_dir, listing = split_files(root, "test")
    if listing is not None:
        ids = sorted({i.strip() for i in read_csv_strict(listing, ("ImageId",))["ImageId"]} - {""})
    elif image_dir.is_dir():
        ids = sorted(path.stem for path in image_dir.glob("*.jpg"))
    else:
        raise InputError("test image folder not found (and no sample_submission.csv)", image_dir)
    return {i: image_size(image_dir / f"{i}.jpg") for i in ids}


def submission_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """The size a mask is encoded at: the original, or longest side `max_side` (never enlarged)."""
    return (height, width) if not max_side else target_size(height, width, max_side)

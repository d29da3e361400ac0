"""The cache's format: what decides a cache file's bytes, and the fingerprint every file carries.

Decoding a 1000 px JPEG and its full-size RLE masks, then shrinking them, costs ~20 ms per
sample (`python -m pipeline bench cache`); the cache turns that into a slice read. Every file
carries a fingerprint of its inputs and parameters, so a stale or half-written cache is refused
rather than silently used (`pipeline.data.cache_reader`). Writing: `pipeline.data.cache_build`.
"""
from __future__ import annotations

import hashlib
import json
import os
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from pipeline.code_version import source_hash
from pipeline.errors import InputError

FORMAT_VERSION = 1
CODECS = ("raw", "jpeg")  # raw: uint8 pixels, fastest reads; jpeg: compact, for small disks
SPLITS = ("train", "test")
# How a dataset root is laid out (`split_files`): Kaggle's iMaterialist 2020 CSVs, or Fashionpedia's
# own COCO-style JSON files (`pipeline.data.fashionpedia`). Both give the same records and caches.
LAYOUTS = ("kaggle", "fashionpedia")
# The fashionpedia layout's annotation files as released; its test split is val2020 (`split_files`).
FASHIONPEDIA_FILES = {"train": "instances_attributes_train2020.json", "test": "instances_attributes_val2020.json"}
# The modules whose behaviour decides the cache's bytes; dvc.yaml's cache stage depends on the same files.
CACHE_SOURCE = ("data/cache_format.py", "data/cache_build.py", "data/resize.py", "data/rle.py", "data/annotations.py",
                "data/fashionpedia.py")


@dataclass(frozen=True)
class CacheConfig:
    """What determines a cache's content (besides its inputs)."""

    max_size: int = 512  # longest image side in the cache; smaller images are kept as they are
    codec: str = "raw"
    jpeg_quality: int = 90  # only used by the jpeg codec
    on_error: str = "raise"  # a bad train.csv row: raise (stop) or skip (leave it out, report it)

    def __post_init__(self):
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be raise or skip, got {self.on_error!r}")
        if self.codec not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        if not 16 <= self.max_size <= 8192:
            raise ValueError(f"max_size must be in 16..8192, got {self.max_size}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")

    def identity(self) -> dict:
        """The parameters that change the bytes written (jpeg_quality only for the jpeg codec)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(CacheConfig)}  # not a subclass's
        if self.codec != "jpeg":
            del fields["jpeg_quality"]
        if self.on_error == "raise":  # the usual case keeps the fingerprints it always had
            del fields["on_error"]
        return fields


def cache_path(cache_dir: str | Path, split: str) -> Path:
    return Path(cache_dir) / f"{split}.h5"


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")


def split_files(root: str | Path, split: str, layout: str = "kaggle") -> tuple[Path, Path | None]:
    """(image folder, annotation or image listing) of a split.

    kaggle: train/ + train.csv; test/ + sample_submission.csv, or None without one (the images are
    then every `test/*.jpg`).
    fashionpedia: train/ + instances_attributes_train2020.json; the test split is val2020, the split
    the papers score: test/ (as val_test2020.zip unpacks) or val/, listed by
    instances_attributes_val2020.json (its annotations are for `evaluate`; a test cache has none).
    """
    root = Path(root)
    check_layout(layout)
    if layout == "fashionpedia" and split in SPLITS:
        folder = root / split
        if split == "test" and not folder.is_dir() and (root / "val").is_dir():
            folder = root / "val"
        return folder, root / FASHIONPEDIA_FILES[split]
    if split == "train":
        return root / "train", root / "train.csv"
    if split == "test":
        listing = root / "sample_submission.csv"
        return root / "test", listing if listing.exists() else None
    raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def file_digest(path: str | Path, digest=None):
    """`digest` (default a new SHA-256) updated with a file's bytes, read a MiB at a time; InputError
    if the file is missing. Call `.hexdigest()` on the result for the file's own hash."""
    digest = hashlib.sha256() if digest is None else digest
    try:
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    return digest


def layout_identity(layout: str) -> dict:
    """The layout as a cache's identity holds it: nothing for kaggle, so those caches keep the
    fingerprints they always had."""
    return {} if layout == "kaggle" else {"layout": layout}


def fingerprint(root: str | Path, split: str, config: CacheConfig, layout: str = "kaggle") -> str:
    """Hash of the split's CSV (or JSON) bytes, its image files' names and sizes, `config`, the
    layout, the format and the code that writes the cache (`CACHE_SOURCE`: comments and docstrings
    do not count).

    Cheap enough to check before every training run: it reads the listing but no image.
    """
    image_dir, csv_path = split_files(root, split, layout)
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": FORMAT_VERSION, "split": split, **config.identity(),
                              **layout_identity(layout), "code": source_hash(CACHE_SOURCE)}).encode())
    if csv_path is not None:
        file_digest(csv_path, digest)
    if not image_dir.is_dir():
        raise InputError("image folder not found", image_dir)
    with os.scandir(image_dir) as entries:
        listing = sorted((e.name, e.stat().st_size) for e in entries if e.is_file())
    digest.update(json.dumps(listing).encode())
    return digest.hexdigest()

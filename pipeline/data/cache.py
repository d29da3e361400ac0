"""`python -m pipeline cache`: one HDF5 file per split with images and masks at training resolution.

Decoding a 1000 px JPEG and its full-size RLE masks, then shrinking them, costs ~20 ms per
sample (`python -m pipeline bench cache`); the cache turns that into a slice read. Every file carries a fingerprint of its inputs and
parameters, so a stale or half-written cache is refused rather than silently used
(`pipeline.data.cache_reader`). Layout and writing: `pipeline.data.cache_build`.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline import params
from pipeline.code_version import source_hash
from pipeline.errors import InputError

FORMAT_VERSION = 1
CODECS = ("raw", "jpeg")  # raw: uint8 pixels, fastest reads; jpeg: compact, for small disks
SPLITS = ("train", "test")
# The modules whose behaviour decides the cache's bytes; dvc.yaml's cache stage depends on the same files.
CACHE_SOURCE = ("data/cache.py", "data/cache_build.py", "data/resize.py", "data/rle.py", "data/annotations.py")
DEFAULTS = {"dir": "cache", "max_size": 512, "codec": "raw", "jpeg_quality": 90, "workers": 2, "on_error": "raise"}


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
        fields = asdict(self)
        if self.codec != "jpeg":
            del fields["jpeg_quality"]
        if self.on_error == "raise":  # the usual case keeps the fingerprints it always had
            del fields["on_error"]
        return fields


def cache_path(cache_dir: str | Path, split: str) -> Path:
    return Path(cache_dir) / f"{split}.h5"


def split_files(root: str | Path, split: str) -> tuple[Path, Path | None]:
    """(image folder, annotation or id list CSV) of a split; the CSV is None for a test split
    without `sample_submission.csv` (its images are then every `test/*.jpg`)."""
    root = Path(root)
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


def fingerprint(root: str | Path, split: str, config: CacheConfig) -> str:
    """Hash of the split's CSV bytes, its image files' names and sizes, `config`, the format and
    the code that writes the cache (`CACHE_SOURCE`: comments and docstrings do not count).

    Cheap enough to check before every training run: it reads the CSV but no image.
    """
    image_dir, csv_path = split_files(root, split)
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": FORMAT_VERSION, "split": split, **config.identity(),
                              "code": source_hash(CACHE_SOURCE)}).encode())
    if csv_path is not None:
        file_digest(csv_path, digest)
    if not image_dir.is_dir():
        raise InputError("image folder not found", image_dir)
    with os.scandir(image_dir) as entries:
        listing = sorted((e.name, e.stat().st_size) for e in entries if e.is_file())
    digest.update(json.dumps(listing).encode())
    return digest.hexdigest()


def add_arguments(parser) -> None:
    parser.add_argument("--split", choices=(*SPLITS, "all"), default="all", help="default: %(default)s")
    parser.add_argument("--root", help="Kaggle-layout dataset root (default: params data.root)")
    parser.add_argument("--out-dir", dest="dir", help="where train.h5 and test.h5 go (default: params cache.dir)")
    parser.add_argument("--max-size", type=int, help="longest image side (default: params cache.max_size)")
    parser.add_argument("--codec", choices=CODECS, help="image codec (default: params cache.codec)")
    parser.add_argument("--jpeg-quality", type=int, help="jpeg codec quality (default: params cache.jpeg_quality)")
    parser.add_argument("--workers", type=int, help="decoding processes, 0 = in this one (default: params cache.workers)")
    parser.add_argument("--on-error", dest="on_error", choices=("raise", "skip"),
                        help="a bad train.csv row: stop (raise) or leave it out and report it (skip); "
                             "default: params cache.on_error")


def settings_and_config(args) -> tuple[dict, CacheConfig]:
    """params.yaml's `cache` section (with flags applied) and the CacheConfig it describes."""
    settings = params.section(args, "cache", DEFAULTS)
    try:
        config = CacheConfig(int(settings["max_size"]), str(settings["codec"]), int(settings["jpeg_quality"]),
                             str(settings["on_error"]))
        if int(settings["workers"]) < 0:
            raise ValueError(f"workers must be >= 0, got {settings['workers']}")
    except ValueError as error:
        raise InputError(f"cache: {error}", args.params) from None
    return settings, config


def open_reader(args, split: str):
    """A CacheReader of `split` that is known to match today's inputs and parameters."""
    from pipeline.data.cache_reader import CacheReader

    settings, config = settings_and_config(args)
    expected = fingerprint(params.data_root(args), split, config)
    return CacheReader(cache_path(settings["dir"], split), expected_fingerprint=expected)


def run(args) -> int:
    # Imported here, not above: both import this module for the config, fingerprint and format.
    from pipeline.data.cache_build import build_cache
    from pipeline.data.cache_reader import UnusableCache, verify

    settings, config = settings_and_config(args)
    root = params.data_root(args)
    for split in SPLITS if args.split == "all" else (args.split,):
        path = cache_path(settings["dir"], split)
        try:
            attributes = verify(path, expected_fingerprint=fingerprint(root, split, config))
        except UnusableCache as unusable:
            if path.exists():
                print(f"{path}: rebuilding ({unusable.reason})")
        else:
            print(f"{path}: up to date ({attributes['num_images']} images), nothing to do")
            continue
        print(f"{path}: {build_cache(root, split, path, config, int(settings['workers']))}")
    return 0

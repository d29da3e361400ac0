"""Random access to a cache file (layout: `pipeline.data.cache_build`), e.g. as a Dataset's source.

    reader = CacheReader("cache/train.h5", expected_fingerprint=fingerprint(root, "train", config))
    sample = reader[i]          # CachedSample: image (H, W, 3), masks (M, H, W), boxes, ...
    reader.image_ids, reader.class_ids_per_image()   # metadata, no image decoded

The small per-image and per-instance arrays are read once into memory; a sample then costs one
slice read of its image bytes and one of its mask run lengths. The HDF5 file is opened lazily
once per process (a DataLoader worker forked or spawned from the parent opens its own: HDF5
handles must not cross a fork), and the reader pickles without it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from pipeline.data import resize
from pipeline.data.cache_format import FORMAT_VERSION, CacheConfig, cache_path, fingerprint
from pipeline.errors import InputError

# Loaded into memory when the reader is made: everything but image bytes and mask run lengths.
_INDEX = (
    "image_offsets", "size", "orig_size", "instance_offsets", "class_id", "box",
    "attr_offsets", "attr_ids", "mask_offsets",
)


@dataclass
class CachedSample:
    image_id: str
    image: np.ndarray  # (H, W, 3) uint8 RGB at cache resolution
    masks: np.ndarray  # (M, H, W) uint8 {0,1}; a transposed view of column-major data
    boxes: np.ndarray  # (M, 4) float32 x1, y1, x2, y2 in cache pixels, pixel edges
    class_ids: np.ndarray  # (M,) int64
    attributes: list[tuple[int, ...]]  # attribute ids per instance, as in train.csv
    orig_size: tuple[int, int]  # (height, width) of the source image


class UnusableCache(InputError):
    """A cache file that is missing, incomplete or stale; `reason` says which, without advice."""

    def __init__(self, reason: str, path: str | Path, command: str = "cache"):
        super().__init__(f"{reason}, run python -m pipeline {command}", path)
        self.reason = reason


def verify(path: str | Path, expected_fingerprint: str | None = None, format_version: int = FORMAT_VERSION,
           command: str = "cache") -> dict:
    """The attributes of a complete cache file of `format_version`; UnusableCache saying why not
    otherwise (its advice: run `command`)."""
    path = Path(path)
    if not path.exists():
        raise UnusableCache("cache not found", path, command)
    try:
        with h5py.File(path, "r") as file:
            attributes = dict(file.attrs)
    except OSError as error:
        raise UnusableCache(f"not a readable cache file ({error})", path, command) from None
    if not attributes.get("complete", False):
        raise UnusableCache("incomplete cache (an interrupted build?)", path, command)
    if attributes.get("format_version") != format_version:
        raise UnusableCache(
            f"stale cache (format {attributes.get('format_version')}, this code reads {format_version})", path, command
        )
    if expected_fingerprint is not None and attributes.get("fingerprint") != expected_fingerprint:
        raise UnusableCache("stale cache (its inputs or parameters changed)", path, command)
    return attributes


def decode_masks(counts: np.ndarray, bounds: np.ndarray, height: int, width: int) -> np.ndarray:
    """(M, H, W) uint8 {0,1} masks from the concatenated run lengths of M instances, instance j's
    being counts[bounds[j] - bounds[0] : bounds[j + 1] - bounds[0]]."""
    # Each instance's runs start with background and are odd in number, so the run values
    # alternate 0, 1, ... from each instance's first run: flip the global parity accordingly.
    starts = bounds[:-1] - bounds[0]
    values = (np.arange(counts.size) & 1) ^ np.repeat(starts & 1, np.diff(bounds))
    flat = np.repeat(values.astype(np.uint8), counts)
    return flat.reshape(bounds.size - 1, width, height).transpose(0, 2, 1)


class CacheReader:
    """Map-style, picklable access to a verified cache file."""

    def __init__(self, path: str | Path, expected_fingerprint: str | None = None):
        self.path = Path(path)
        self.attributes = verify(self.path, expected_fingerprint)
        self.codec = str(self.attributes["codec"])
        with h5py.File(self.path, "r") as file:
            self.image_ids: list[str] = file["image_id"].asstr()[:].tolist()
            index = {name: file[name][:] for name in _INDEX}
        self.image_offsets = index["image_offsets"]
        self.sizes = index["size"]  # (N, 2) cache height, width
        self.orig_sizes = index["orig_size"]  # (N, 2) source height, width
        self.instance_offsets = index["instance_offsets"]
        self.class_ids = index["class_id"].astype(np.int64)  # (I,) all instances, image after image
        self.boxes = index["box"]
        self.attr_offsets = index["attr_offsets"]
        self.attr_ids = index["attr_ids"]
        self.mask_offsets = index["mask_offsets"]
        self._file: h5py.File | None = None
        self._datasets: dict[str, h5py.Dataset] = {}
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> CachedSample:
        if not -len(self) <= i < len(self):
            raise IndexError(f"image {i} out of range for {len(self)} images")
        i %= len(self)
        first, last = self.instance_offsets[i], self.instance_offsets[i + 1]
        attr_bounds = self.attr_offsets[first : last + 1]
        return CachedSample(
            image_id=self.image_ids[i],
            image=self.image(i),
            masks=self.masks(i),
            boxes=self.boxes[first:last].copy(),  # copies: a transform may write to them
            class_ids=self.class_ids[first:last].copy(),
            attributes=[tuple(self.attr_ids[a:b].tolist()) for a, b in zip(attr_bounds[:-1], attr_bounds[1:])],
            orig_size=tuple(self.orig_sizes[i].tolist()),
        )

    def image(self, i: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB image `i` at cache resolution."""
        data = self._dataset("image_data")[self.image_offsets[i] : self.image_offsets[i + 1]]
        if self.codec == "jpeg":
            return resize.decode_image(data, f"{self.path} image {i}")
        return data.reshape(*self.sizes[i], 3)

    def masks(self, i: int) -> np.ndarray:
        """(M, H, W) uint8 {0,1} instance masks of image `i`, decoded with one np.repeat."""
        first, last = self.instance_offsets[i], self.instance_offsets[i + 1]
        bounds = self.mask_offsets[first : last + 1]
        return decode_masks(self._dataset("mask_counts")[bounds[0] : bounds[-1]], bounds, *self.sizes[i].tolist())

    def class_ids_per_image(self) -> list[np.ndarray]:
        """Class ids of each image's instances, in image order (no file access)."""
        return np.split(self.class_ids, self.instance_offsets[1:-1])

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = self._pid = None
        self._datasets = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None, "_datasets": {}, "_pid": None}

    def _dataset(self, name: str) -> h5py.Dataset:
        if self._pid != os.getpid():  # first use in this process, e.g. a fresh DataLoader worker
            file = h5py.File(self.path, "r")
            if file.attrs.get("fingerprint") != self.attributes["fingerprint"]:
                file.close()
                raise UnusableCache("cache file replaced since this reader was made", self.path)
            self._file, self._pid = file, os.getpid()
            self._datasets = {name: file[name] for name in ("image_data", "mask_counts")}
        return self._datasets[name]


def open_cache(cache_dir: str | Path, root: str | Path, split: str, config: CacheConfig,
               layout: str = "kaggle") -> CacheReader:
    """The reader of `split`'s cache in `cache_dir`, known to match today's inputs under `root` (laid out
    as `layout`) and `config`."""
    return CacheReader(cache_path(cache_dir, split), expected_fingerprint=fingerprint(root, split, config, layout))

"""One DeepFashion2 split (`image/` + `annos/`) in one HDF5 file (the `cache-df2` stage).

The same design as the Fashionpedia cache (`pipeline.data.cache_format`, `cache_build`, `cache_reader`):
images shrunk to a longest side of `max_size`, every annotation validated once
(`pipeline.data.deepfashion2.annotations`), polygons rasterised once at full size as the official evaluation
does (pycocotools) and shrunk with the masks' coverage rule, a fingerprint of the inputs and
parameters, the file written under a temporary name and renamed when complete. Layout (N images,
I items, L landmarks in all):

    image_offsets (N+1,) int64   image_data (.,) uint8 (raw RGB or JPEG bytes)
    size, orig_size (N, 2) int32 (height, width) in the cache and in the source image
    image_id (N,) int64          the annotation file's number
    source (N,) uint8            0 user (consumer photo), 1 shop
    pair_id (N,) int64
    instance_offsets (N+1,) int64
    category_id (I,) int16       1..13
    style (I,) int32             0: in no pair
    box (I, 4) float32           the annotated x1, y1, x2, y2 scaled to cache pixels
    difficulty (I, 4) int8       scale, occlusion, zoom_in, viewpoint (1..3 each)
    landmark_offsets (I+1,) int64  item j's landmarks: landmarks[landmark_offsets[j]:landmark_offsets[j+1]]
    landmarks (L, 3) float32     x, y in cache pixels, v (2 visible, 1 occluded, 0 not labelled: x = y = 0)
    mask_offsets (I+1,) int64    mask_counts (.,) int32: run lengths at cache size, as the Fashionpedia cache
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from pycocotools import mask as mask_utils

from pipeline.data.deepfashion2 import annotations as df2
from pipeline.data import resize, rle
from pipeline.data.cache_format import CacheConfig
from pipeline.data.cache_build import BATCH_BYTES, prepared_images
from pipeline.data.cache_reader import UnusableCache, decode_masks, verify
from pipeline.errors import InputError
from pipeline.io import atomic_path
from pipeline.progress import progress as shown_progress

FORMAT_VERSION = 1
COMMAND = "cache-df2"
SOURCE_CODES = {name: code for code, name in enumerate(df2.SOURCES)}

# (name, dtype, row shape, chunk rows): bulk data sliced per sample, uncompressed; the rest is an
# index read whole when a reader opens, compressed.
_BULK = (("image_data", np.uint8, (), 1 << 18), ("mask_counts", np.int32, (), 1 << 14))
_INDEX = (
    ("size", np.int32, (2,)), ("orig_size", np.int32, (2,)), ("image_id", np.int64, ()),
    ("source", np.uint8, ()), ("pair_id", np.int64, ()), ("category_id", np.int16, ()),
    ("style", np.int32, ()), ("box", np.float32, (4,)), ("difficulty", np.int8, (4,)),
    ("landmarks", np.float32, (3,)),
)
_OFFSETS = ("image_offsets", "instance_offsets", "landmark_offsets", "mask_offsets")


@dataclass
class Df2Task:
    image_path: Path
    anno_path: Path
    config: CacheConfig


@dataclass
class PreparedDf2:
    """One image and its items at cache resolution, as stored: dataset name -> rows."""

    arrays: dict[str, np.ndarray]
    lengths: dict[str, int]  # offsets dataset -> length of this image's part

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())


def split_dirs(root: str | Path) -> tuple[Path, Path]:
    root = Path(root)
    return root / "image", root / "annos"


def fingerprint(root: str | Path, config: CacheConfig) -> str:
    """Hash of every annotation file's bytes, the image files' names and sizes, `config` and the format."""
    image_dir, annos_dir = split_dirs(root)
    for folder in (image_dir, annos_dir):
        if not folder.is_dir():
            raise InputError("folder not found", folder)
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": FORMAT_VERSION, "dataset": "deepfashion2", **config.identity()}).encode())
    for path in sorted(annos_dir.glob("*.json")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    with os.scandir(image_dir) as entries:
        listing = sorted((e.name, e.stat().st_size) for e in entries if e.is_file())
    digest.update(json.dumps(listing).encode())
    return digest.hexdigest()


def list_tasks(root: str | Path, config: CacheConfig) -> list[Df2Task]:
    """Every annotation file in image id order, with its image `image/<same name>.jpg`."""
    image_dir, annos_dir = split_dirs(root)
    paths = sorted(annos_dir.glob("*.json"), key=df2.image_id_of)
    if not paths:
        raise InputError("no *.json annotation file", annos_dir)
    ids = [df2.image_id_of(p) for p in paths]
    for previous, current, path in zip(ids, ids[1:], paths[1:]):
        if previous == current:
            raise InputError(f"image id {current} appears twice in {annos_dir}", path)
    return [Df2Task(image_dir / f"{p.stem}.jpg", p, config) for p in paths]


def rasterise(polygons, height: int, width: int) -> np.ndarray:
    """(height, width) uint8 {0,1} column-major mask of an item's polygons, as COCO.annToRLE."""
    merged = mask_utils.merge(mask_utils.frPyObjects([list(p) for p in polygons], height, width))
    return mask_utils.decode(merged)


def prepare(task: Df2Task) -> PreparedDf2:
    """Read and validate the annotation, decode the image, rasterise and shrink (in a worker)."""
    annotation = df2.read_annotation(task.anno_path)
    try:
        image = resize.read_image(task.image_path)
    except InputError as error:
        raise InputError(f"{error.message} (the image of {task.anno_path})", error.path) from None
    orig_size = image.shape[:2]
    size = resize.target_size(*orig_size, task.config.max_size)
    scale = np.array([size[1] / orig_size[1], size[0] / orig_size[0]])  # x, y
    image = resize.resize_image(image, size)
    if task.config.codec == "jpeg":
        image_data = resize.encode_jpeg(image, task.config.jpeg_quality)
    else:
        image_data = np.ascontiguousarray(image).ravel()
    items = annotation.items
    counts = [rle.mask_to_counts(resize.resize_mask(rasterise(item.segmentation, *orig_size), size)).astype(np.int32)
              for item in items]
    landmarks = [np.c_[item.landmarks[:, :2] * scale, item.landmarks[:, 2]] for item in items]
    arrays = {
        "image_data": image_data,
        "size": np.array([size], np.int32),
        "orig_size": np.array([orig_size], np.int32),
        "image_id": np.array([annotation.image_id], np.int64),
        "source": np.array([SOURCE_CODES[annotation.source]], np.uint8),
        "pair_id": np.array([annotation.pair_id], np.int64),
        "category_id": np.array([item.category_id for item in items], np.int16),
        "style": np.array([item.style for item in items], np.int32),
        "box": (np.array([item.box for item in items], np.float64).reshape(-1, 4) * np.tile(scale, 2)).astype(np.float32),
        "difficulty": np.array([item.difficulty for item in items], np.int8).reshape(-1, 4),
        "landmarks": np.concatenate(landmarks).astype(np.float32) if items else np.zeros((0, 3), np.float32),
        "mask_counts": np.concatenate(counts) if items else np.zeros(0, np.int32),
    }
    lengths = {"image_offsets": [image_data.size], "instance_offsets": [len(items)],
               "landmark_offsets": [len(points) for points in landmarks], "mask_offsets": [c.size for c in counts]}
    return PreparedDf2(arrays, lengths)


class Df2Writer:
    """Appends PreparedDf2 items to an open, empty h5py.File in batches of ~`batch_bytes`."""

    def __init__(self, file: h5py.File, batch_bytes: int = BATCH_BYTES):
        self.file = file
        self.batch_bytes = batch_bytes
        self.batch: list[PreparedDf2] = []
        self.batch_nbytes = 0
        self.num_images = self.num_instances = 0
        for name, dtype, row, chunk in _BULK:
            file.create_dataset(name, (0, *row), dtype, maxshape=(None, *row), chunks=(chunk, *row))
        for name, dtype, row in (*_INDEX, *((name, np.int64, ()) for name in _OFFSETS)):
            file.create_dataset(name, (0, *row), dtype, maxshape=(None, *row), chunks=(1 << 14, *row),
                                compression="gzip", compression_opts=1, shuffle=True)
        for name in _OFFSETS:
            self._extend(name, np.zeros(1, np.int64))

    def append(self, item: PreparedDf2) -> None:
        self.batch.append(item)
        self.batch_nbytes += item.nbytes
        if self.batch_nbytes >= self.batch_bytes:
            self.flush()

    def flush(self) -> None:
        batch, self.batch, self.batch_nbytes = self.batch, [], 0
        if not batch:
            return
        for name in (*(b[0] for b in _BULK), *(i[0] for i in _INDEX)):
            self._extend(name, np.concatenate([item.arrays[name] for item in batch]))
        for name in _OFFSETS:
            lengths = [n for item in batch for n in item.lengths[name]]
            self._extend(name, self.file[name][-1] + np.cumsum(lengths, dtype=np.int64))
        self.num_images += len(batch)
        self.num_instances += sum(item.lengths["instance_offsets"][0] for item in batch)

    def finish(self, attributes: dict) -> None:
        """Write what is buffered, then the attributes, `complete` last."""
        self.flush()
        self.file.attrs.update(attributes)
        self.file.attrs["num_images"] = self.num_images
        self.file.attrs["num_instances"] = self.num_instances
        self.file.attrs["complete"] = True

    def _extend(self, name: str, values: np.ndarray) -> None:
        dataset = self.file[name]
        start = dataset.shape[0]
        dataset.resize(start + len(values), axis=0)
        if len(values):
            dataset[start:] = values


def build_cache(root: str | Path, path: str | Path, config: CacheConfig, workers: int = 0,
                batch_bytes: int = BATCH_BYTES, progress: bool = False) -> str:
    """Write the cache of the split at `root` to `path`, replacing it only once complete; a summary line."""
    start = time.perf_counter()
    attributes = {"format_version": FORMAT_VERSION, "dataset": "deepfashion2",
                  "fingerprint": fingerprint(root, config), **config.identity()}
    tasks = list_tasks(root, config)
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as file, closing(prepared_images(tasks, workers, prepare)) as items:
            writer = Df2Writer(file, batch_bytes)
            for item in shown_progress(items, progress, len(tasks), f"cache-df2 {Path(root).name}"):
                writer.append(item)
            writer.finish(attributes)
    return (f"{writer.num_images} images, {writer.num_instances} items, {path.stat().st_size / 1e6:.1f} MB, "
            f"{time.perf_counter() - start:.1f} s")


def verify_df2(path: str | Path, expected_fingerprint: str | None = None) -> dict:
    """`cache_reader.verify` for this format, and the file must be a DeepFashion2 cache."""
    attributes = verify(path, expected_fingerprint, FORMAT_VERSION, COMMAND)
    if attributes.get("dataset") != "deepfashion2":
        raise UnusableCache("not a DeepFashion2 cache", path, COMMAND)
    return attributes


@dataclass
class Df2Sample:
    image_id: int
    image: np.ndarray  # (H, W, 3) uint8 RGB at cache resolution
    masks: np.ndarray  # (M, H, W) uint8 {0,1}
    boxes: np.ndarray  # (M, 4) float32 x1, y1, x2, y2 in cache pixels (the annotated boxes)
    category_ids: np.ndarray  # (M,) int64
    styles: np.ndarray  # (M,) int64
    landmarks: list[np.ndarray]  # M arrays (N_category, 3): x, y in cache pixels, v
    difficulty: np.ndarray  # (M, 4) scale, occlusion, zoom_in, viewpoint
    source: str
    pair_id: int
    orig_size: tuple[int, int]


class Df2CacheReader:
    """Map-style, picklable access to a verified DeepFashion2 cache file (one HDF5 handle per process)."""

    def __init__(self, path: str | Path, expected_fingerprint: str | None = None):
        self.path = Path(path)
        self.attributes = verify_df2(self.path, expected_fingerprint)
        with h5py.File(self.path, "r") as file:
            self.index = {name: file[name][:] for name in (*(i[0] for i in _INDEX), *_OFFSETS)}
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return self.index["image_id"].size

    def __getitem__(self, i: int) -> Df2Sample:
        if not -len(self) <= i < len(self):
            raise IndexError(f"image {i} out of range for {len(self)} images")
        i %= len(self)
        index = self.index
        first, last = index["instance_offsets"][i : i + 2]
        bounds = index["landmark_offsets"][first : last + 1]
        points = index["landmarks"]
        return Df2Sample(
            image_id=int(index["image_id"][i]),
            image=self.image(i),
            masks=self.masks(i),
            boxes=index["box"][first:last].copy(),
            category_ids=index["category_id"][first:last].astype(np.int64),
            styles=index["style"][first:last].astype(np.int64),
            landmarks=[points[a:b].copy() for a, b in zip(bounds[:-1], bounds[1:])],
            difficulty=index["difficulty"][first:last].astype(np.int64),
            source=df2.SOURCES[index["source"][i]],
            pair_id=int(index["pair_id"][i]),
            orig_size=tuple(index["orig_size"][i].tolist()),
        )

    def image(self, i: int) -> np.ndarray:
        start, end = self.index["image_offsets"][i : i + 2]
        data = self._dataset("image_data")[start:end]
        if self.attributes["codec"] == "jpeg":
            return resize.decode_image(data, f"{self.path} image {i}")
        return data.reshape(*self.index["size"][i], 3)

    def masks(self, i: int) -> np.ndarray:
        first, last = self.index["instance_offsets"][i : i + 2]
        bounds = self.index["mask_offsets"][first : last + 1]
        return decode_masks(self._dataset("mask_counts")[bounds[0] : bounds[-1]], bounds, *self.index["size"][i].tolist())

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None, "_pid": None}

    def _dataset(self, name: str) -> h5py.Dataset:
        if self._pid != os.getpid():  # first use in this process (HDF5 handles must not cross a fork)
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file[name]


def refresh(root: str | Path, path: str | Path, config: CacheConfig, workers: int = 0, progress: bool = False) -> str:
    """Build the cache of the split folder `root` at `path` unless it is up to date; what happened."""
    try:
        attributes = verify_df2(path, fingerprint(root, config))
    except UnusableCache as unusable:
        rebuilding = f"{path}: rebuilding ({unusable.reason})\n" if Path(path).exists() else ""
        return f"{rebuilding}{path}: {build_cache(root, path, config, workers, progress=progress)}"
    return f"{path}: up to date ({attributes['num_images']} images), nothing to do"

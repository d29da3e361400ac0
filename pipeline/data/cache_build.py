"""Build a cache file: decode images and masks in worker processes, append them to flat HDF5 datasets.

Layout (N images, I instances; every dataset is 1-D or (n, k), chunked and appended in batches):

    image_offsets (N+1,) int64    image i is image_data[image_offsets[i]:image_offsets[i+1]]
    image_data    (.,)   uint8    raw codec: H*W*3 RGB pixels, row-major; jpeg codec: JPEG bytes
    size          (N, 2) int32    cache (height, width); orig_size (N, 2): the source image's
    image_id      (N,)   str
    instance_offsets (N+1,) int64 image i owns instances instance_offsets[i]:instance_offsets[i+1]
    class_id      (I,)   int16
    box           (I, 4) float32  x1, y1, x2, y2 of the cache mask, pixel edges
    attr_offsets  (I+1,) int64    instance j's attribute ids: attr_ids[attr_offsets[j]:attr_offsets[j+1]]
    attr_ids      (.,)   int16    ids as in train.csv (not vector positions)
    mask_offsets  (I+1,) int64    instance j's mask: mask_counts[mask_offsets[j]:mask_offsets[j+1]]
    mask_counts   (.,)   int32    COCO-style run lengths at cache size: background first, column-major

File attributes: format_version, fingerprint, split, codec, max_size, jpeg_quality, and
`complete`, set last. The file is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import multiprocessing
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import h5py
import numpy as np

from pipeline.data import fashionpedia
from pipeline.data import ontology as ontology_lib
from pipeline.data import resize, rle
from pipeline.data.annotations import ImageRecord, read_annotations, read_csv_strict
from pipeline.data.cache_format import FORMAT_VERSION, CacheConfig, fingerprint, layout_identity, split_files
from pipeline.data.cache_reader import UnusableCache, verify
from pipeline.errors import InputError
from pipeline.io import atomic_path
from pipeline.progress import progress as shown_progress

# Results waiting for the writer, per worker: bounds memory whatever the relative speeds.
PENDING_PER_WORKER = 4
# Buffered bytes that trigger a write to the file.
BATCH_BYTES = 32 << 20


@dataclass
class ImageTask:
    """One image to prepare; `record` is None for a test image (no annotations)."""

    path: Path
    record: ImageRecord | None
    config: CacheConfig
    source: str  # the CSV, JSON (and image id) or folder it was listed in, for error messages


@dataclass
class PreparedImage:
    """One image and its instances at cache resolution, in the form they are stored."""

    image_id: str
    image_data: np.ndarray  # uint8 1-D
    size: tuple[int, int]
    orig_size: tuple[int, int]
    class_ids: np.ndarray  # (M,) int16
    boxes: np.ndarray  # (M, 4) float32
    attributes: list[tuple[int, ...]]
    mask_counts: list[np.ndarray]  # M int32 arrays

    @property
    def nbytes(self) -> int:
        return self.image_data.nbytes + sum(c.nbytes for c in self.mask_counts)


def list_tasks(root: str | Path, split: str, config: CacheConfig, layout: str = "kaggle") -> Iterable[ImageTask]:
    """The split's images in order: train.csv's order for train, sorted ids for test. The
    fashionpedia layout's (`fashionpedia_tasks`) come as an iterator, each record made as it is taken."""
    if layout == "fashionpedia":
        return fashionpedia_tasks(root, split, config)
    image_dir, csv_path = split_files(root, split, layout)
    if split == "train":
        records, skipped = read_annotations(csv_path, ontology_lib.load_for_dataset(root), config.on_error)
        for error in skipped:
            print(f"skipped {error}", file=sys.stderr)
        if skipped:
            print(f"{csv_path}: {len(skipped)} bad row(s) skipped", file=sys.stderr)
        return [ImageTask(image_dir / f"{r.image_id}.jpg", r, config, str(csv_path)) for r in records]
    if csv_path is not None:
        ids = sorted({i.strip() for i in read_csv_strict(csv_path, ("ImageId",))["ImageId"]} - {""})
        paths = [image_dir / f"{i}.jpg" for i in ids]
    elif image_dir.is_dir():
        paths = sorted(image_dir.glob("*.jpg"))
    else:
        raise InputError("image folder not found (and no sample_submission.csv)", image_dir)
    return [ImageTask(p, None, config, str(csv_path or image_dir)) for p in paths]


def fashionpedia_tasks(root: str | Path, split: str, config: CacheConfig) -> Iterator[ImageTask]:
    """The fashionpedia layout's split: for train, the file's images that have annotations, in file
    order (as train.csv lists only those, and as Detectron2 and MMDetection train by default); for
    test, every listed image by ImageId, without annotations. The file is read and validated here,
    before the first task is taken."""
    image_dir, listing = split_files(root, split, "fashionpedia")
    if split != "train":
        images = sorted(fashionpedia.read_images(listing), key=lambda image: image.image_id)
        return iter([ImageTask(image_dir / i.file_name, None, config, f"{listing} image id {i.id}") for i in images])
    instances, skipped = fashionpedia.load_instances(listing, ontology_lib.load_for_dataset(root), config.on_error)
    for error in skipped:
        print(f"skipped {error}", file=sys.stderr)
    if skipped:
        print(f"{listing}: {len(skipped)} bad annotation(s) skipped", file=sys.stderr)
    annotated = instances.annotated()
    if len(annotated) < len(instances.images):
        print(f"{listing}: {len(instances.images) - len(annotated)} image(s) without annotations left out",
              file=sys.stderr)
    return (ImageTask(image_dir / image.file_name, instances.record(image), config, f"{listing} image id {image.id}")
            for image in annotated)


@dataclass
class DecodedSample:
    """One image and its instances at cache resolution, decoded."""

    image_id: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    masks: list[np.ndarray]  # M (H, W) uint8 {0,1}
    boxes: np.ndarray  # (M, 4) float32 x1, y1, x2, y2, pixel edges
    orig_size: tuple[int, int]


def decode_sample(task: ImageTask) -> DecodedSample:
    """Read the JPEG and decode the RLE masks at full size, shrink both to cache resolution.

    This is what a data loader without the cache does for every sample.
    """
    record = task.record
    first_line = f" line {record.instances[0].line}" if record is not None and record.instances and \
        record.instances[0].line else ""
    where = f" (listed in {task.source}{first_line})"
    try:
        image = resize.read_image(task.path)
    except InputError as error:
        raise InputError(error.message + where, error.path) from None
    orig_size = image.shape[:2]
    if record is not None and (record.height, record.width) != orig_size:
        raise InputError(
            f"image is {orig_size[0]}x{orig_size[1]} but its listing says {record.height}x{record.width}{where}",
            task.path
        )
    size = resize.target_size(*orig_size, task.config.max_size)
    instances = record.instances if record is not None else []
    masks = [resize.resize_mask(rle.decode(inst.rle, *orig_size), size) for inst in instances]
    return DecodedSample(
        image_id=record.image_id if record is not None else task.path.stem,
        image=resize.resize_image(image, size),
        masks=masks,
        boxes=np.array([resize.mask_box(m) for m in masks], np.float32).reshape(-1, 4),
        orig_size=orig_size,
    )


def prepare(task: ImageTask) -> PreparedImage:
    """`decode_sample`, then encode the image and masks as stored (runs in a worker process)."""
    sample = decode_sample(task)
    if task.config.codec == "jpeg":
        image_data = resize.encode_jpeg(sample.image, task.config.jpeg_quality)
    else:
        image_data = np.ascontiguousarray(sample.image).ravel()
    instances = task.record.instances if task.record is not None else []
    return PreparedImage(
        image_id=sample.image_id,
        image_data=image_data,
        size=sample.image.shape[:2],
        orig_size=sample.orig_size,
        class_ids=np.array([inst.class_id for inst in instances], np.int16),
        boxes=sample.boxes,
        attributes=[inst.attributes for inst in instances],
        mask_counts=[rle.mask_to_counts(m).astype(np.int32) for m in sample.masks],
    )


@dataclass
class _Failure:
    """An InputError from a worker: the exception itself loses its path and line when pickled."""

    message: str
    path: str | None
    line: int | None


def _prepare_in_worker(task, prepare_function=None):
    try:
        return (prepare_function or prepare)(task)
    except InputError as error:
        return _Failure(error.message, error.path, error.line)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # parallelism comes from the processes


def prepared_images(tasks: Iterable, workers: int, prepare_function=None) -> Iterator:
    """`prepare_function` (None: `prepare`; a module-level function, it goes to the workers by
    name) over `tasks`, in order, in `workers` processes (0: in this one).

    At most PENDING_PER_WORKER results per worker wait for the consumer (an unbounded map would queue
    every result of a fast pool behind a slow writer), so memory does not grow with the dataset.
    """
    if workers == 0:
        yield from map(prepare_function or prepare, tasks)
        return
    # spawn: the parent may hold an open HDF5 file and threads, which fork would copy.
    # On an error or interrupt the executor cancels what has not started and lets the few running
    # tasks finish (a CI run once hung on this error path with multiprocessing.Pool, which terminates).
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)
    try:
        pending: deque = deque()
        for task in tasks:
            pending.append(executor.submit(_prepare_in_worker, task, prepare_function))
            if len(pending) >= PENDING_PER_WORKER * workers:
                yield _unwrap(pending.popleft().result())
        while pending:
            yield _unwrap(pending.popleft().result())
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _unwrap(result):
    if isinstance(result, _Failure):
        raise InputError(result.message, result.path, result.line)
    return result


class CacheWriter:
    """Appends PreparedImages to an open, empty h5py.File, writing in batches of ~`batch_bytes`."""

    def __init__(self, file: h5py.File, codec: str, batch_bytes: int = BATCH_BYTES):
        self.file = file
        self.batch_bytes = batch_bytes
        self.batch: list[PreparedImage] = []
        self.batch_nbytes = 0
        self.num_images = 0
        self.num_instances = 0
        self.empty_masks = 0
        # Sliced once per sample: uncompressed, in chunks near the size of one read (small ones
        # for JPEG bytes, or every read would pull a whole large chunk through HDF5's cache).
        image_chunk = 1 << 16 if codec == "jpeg" else 1 << 18
        for name, dtype, chunk in (("image_data", np.uint8, image_chunk), ("mask_counts", np.int32, 1 << 14)):
            file.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(chunk,))
        # Read whole when a reader opens: compressed, so the padding of the last chunk costs nothing.
        for name, dtype, row in (
            ("image_offsets", np.int64, ()),
            ("size", np.int32, (2,)),
            ("orig_size", np.int32, (2,)),
            ("image_id", h5py.string_dtype(), ()),
            ("instance_offsets", np.int64, ()),
            ("class_id", np.int16, ()),
            ("box", np.float32, (4,)),
            ("attr_offsets", np.int64, ()),
            ("attr_ids", np.int16, ()),
            ("mask_offsets", np.int64, ()),
        ):
            file.create_dataset(name, (0, *row), dtype, maxshape=(None, *row), chunks=(1 << 14, *row),
                                compression="gzip", compression_opts=1, shuffle=True)
        for name in ("image_offsets", "instance_offsets", "attr_offsets", "mask_offsets"):
            self._extend(name, np.zeros(1, np.int64))

    def append(self, item: PreparedImage) -> None:
        self.batch.append(item)
        self.batch_nbytes += item.nbytes
        if self.batch_nbytes >= self.batch_bytes:
            self.flush()

    def flush(self) -> None:
        batch, self.batch, self.batch_nbytes = self.batch, [], 0
        if not batch:
            return
        instances = [len(item.class_ids) for item in batch]
        counts = [c for item in batch for c in item.mask_counts]
        attributes = [a for item in batch for a in item.attributes]
        self._extend_offsets("image_offsets", [item.image_data.size for item in batch])
        self._extend("image_data", np.concatenate([item.image_data for item in batch]))
        self._extend("size", np.array([item.size for item in batch], np.int32))
        self._extend("orig_size", np.array([item.orig_size for item in batch], np.int32))
        self._extend("image_id", np.array([item.image_id for item in batch], object))
        self._extend_offsets("instance_offsets", instances)
        self._extend("class_id", np.concatenate([item.class_ids for item in batch]))
        self._extend("box", np.concatenate([item.boxes for item in batch]))
        self._extend_offsets("attr_offsets", [len(a) for a in attributes])
        self._extend("attr_ids", np.array([i for a in attributes for i in a], np.int16))
        self._extend_offsets("mask_offsets", [c.size for c in counts])
        self._extend("mask_counts", np.concatenate(counts) if counts else np.zeros(0, np.int32))
        self.num_images += len(batch)
        self.num_instances += sum(instances)
        self.empty_masks += sum(c.size == 1 for c in counts)  # one background run: no pixel

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

    def _extend_offsets(self, name: str, lengths: list[int]) -> None:
        last = self.file[name][-1]
        self._extend(name, last + np.cumsum(lengths, dtype=np.int64))


@dataclass
class BuildSummary:
    images: int
    instances: int
    empty_masks: int
    bytes: int
    seconds: float

    def __str__(self) -> str:
        empty = f", {self.empty_masks} with an empty mask in the CSV" if self.empty_masks else ""
        return (
            f"{self.images} images, {self.instances} instances{empty}, "
            f"{self.bytes / 1e6:.1f} MB, {self.seconds:.1f} s"
        )


def build_cache(
    root: str | Path, split: str, path: str | Path, config: CacheConfig, workers: int = 0,
    batch_bytes: int = BATCH_BYTES, layout: str = "kaggle", progress: bool = False,
) -> BuildSummary:
    """Write the cache of `root`'s `split` (laid out as `layout`) to `path`, replacing it only once complete.

    On any error (bad input, interruption) nothing is left under `path` but what was there.
    """
    start = time.perf_counter()
    attributes = {
        "format_version": FORMAT_VERSION,
        "fingerprint": fingerprint(root, split, config, layout),  # of the inputs as they were before reading
        "split": split,
        **config.identity(),
        **layout_identity(layout),
    }
    tasks = list_tasks(root, split, config, layout)
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp:
        # closing: a failed append shuts the workers down here, not whenever the generator is collected
        with h5py.File(tmp, "w") as file, closing(prepared_images(tasks, workers)) as items:
            writer = CacheWriter(file, config.codec, batch_bytes)
            total = len(tasks) if isinstance(tasks, list) else None  # the fashionpedia layout's is a generator
            for item in shown_progress(items, progress, total, f"cache {split}"):
                writer.append(item)
            writer.finish(attributes)
    return BuildSummary(
        writer.num_images, writer.num_instances, writer.empty_masks, path.stat().st_size, time.perf_counter() - start
    )


def refresh(root: str | Path, split: str, path: str | Path, config: CacheConfig, workers: int = 0,
            layout: str = "kaggle", progress: bool = False) -> str:
    """Build `split`'s cache at `path` unless it is up to date with `root`, `config` and `layout`; what happened."""
    try:
        attributes = verify(path, expected_fingerprint=fingerprint(root, split, config, layout))
    except UnusableCache as unusable:
        rebuilding = f"{path}: rebuilding ({unusable.reason})\n" if Path(path).exists() else ""
        summary = build_cache(root, split, path, config, workers, layout=layout, progress=progress)
        return f"{rebuilding}{path}: {summary}"
    return f"{path}: up to date ({attributes['num_images']} images), nothing to do"

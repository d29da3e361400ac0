import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import h5py
import numpy as np
from PIL import Image
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.data import cache_build, resize, rle
from pipeline.data.annotations import TRAIN_COLUMNS, read_annotations
from pipeline.data.cache_format import FORMAT_VERSION, CacheConfig, fingerprint
from pipeline.data.cache_build import build_cache
from pipeline.data.cache_reader import CacheReader, verify
from pipeline.data.ontology import load
from pipeline.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
ATTRIBUTES = ((), (115, 136), (317,))


def write_dataset(root: Path, train_images: int = 4, test_images: int = 2, height: int = 300, width: int = 400,
                  seed: int = 0) -> Path:
    """A tiny Kaggle-layout dataset: smooth JPEGs with ellipse instances, one hairline strap
    (thinner than a pixel at 128 px), and on the first image an instance with an empty mask."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, count in (("train", train_images), ("test", test_images)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image_id = f"{split}{index:03d}"
            yy, xx = np.mgrid[:height, :width]
            image = np.dstack([(xx * 255 // width), (yy * 255 // height), np.full_like(xx, 40 * index % 255)])
            image = image.astype(np.uint8)
            masks = []
            for _ in range(3):
                mask = np.zeros((height, width), np.uint8)
                center = (int(rng.integers(width // 4, 3 * width // 4)), int(rng.integers(height // 4, 3 * height // 4)))
                axes = (int(rng.integers(10, width // 4)), int(rng.integers(10, height // 4)))
                cv2.ellipse(mask, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
                masks.append(mask)
            strap = np.zeros((height, width), np.uint8)
            strap[height // 3 : 2 * height // 3, width // 2] = 1
            masks.append(strap)
            for k, mask in enumerate(masks):
                image[mask == 1] = rng.integers(0, 255, 3)
                if split == "train":
                    rows.append((image_id, rle.encode(mask), height, width, [1, 6, 31, 33][k],
                                 ",".join(map(str, ATTRIBUTES[k % 3]))))
            cv2.imwrite(str(root / split / f"{image_id}.jpg"), image[:, :, ::-1])
            if split == "train" and index == 0:
                rows.append((image_id, "", height, width, 28, ""))
    pd.DataFrame(rows, columns=TRAIN_COLUMNS).to_csv(root / "train.csv", index=False)
    return root


@pytest.fixture
def dataset(tmp_path) -> Path:
    return write_dataset(tmp_path / "data")


def test_round_trip(dataset, tmp_path):
    records, _ = read_annotations(dataset / "train.csv", load())
    for codec in ("raw", "jpeg"):
        path = tmp_path / f"{codec}.h5"
        summary = build_cache(dataset, "train", path, CacheConfig(max_size=128, codec=codec))
        assert (summary.images, summary.instances, summary.empty_masks) == (4, 17, 1)
        reader = CacheReader(path, fingerprint(dataset, "train", CacheConfig(max_size=128, codec=codec)))
        assert reader.image_ids == [r.image_id for r in records]
        assert [c.tolist() for c in reader.class_ids_per_image()] == [r.class_ids for r in records]
        for i, record in enumerate(records):
            sample = reader[i]
            assert sample.orig_size == (300, 400) and sample.image.shape == (96, 128, 3)
            expected_image = resize.resize_image(resize.read_image(dataset / "train" / f"{record.image_id}.jpg"), (96, 128))
            error = np.abs(sample.image.astype(int) - expected_image).mean()
            assert error == 0 if codec == "raw" else error < 3
            assert sample.masks.shape == (len(record.instances), 96, 128)
            assert sample.class_ids.tolist() == record.class_ids
            assert sample.attributes == [inst.attributes for inst in record.instances]
            for mask, box, inst in zip(sample.masks, sample.boxes, record.instances):
                expected = resize.resize_mask(rle.decode(inst.rle, 300, 400), (96, 128))
                assert np.array_equal(mask, expected)
                assert np.array_equal(box, resize.mask_box(expected))
                assert mask.any() == bool(inst.rle)  # the hairline strap survives, the empty mask stays empty


def test_fashionpedia_sample_round_trip(fashionpedia_sample, tmp_path):
    records, _ = read_annotations(fashionpedia_sample / "train.csv", load())
    build_cache(fashionpedia_sample, "train", tmp_path / "train.h5", CacheConfig(max_size=512), workers=0)
    reader = CacheReader(tmp_path / "train.h5")
    assert len(reader) == 2 and reader.sizes.tolist() == [[512, 316], [512, 346]]
    assert reader.orig_sizes.tolist() == [[1000, 618], [1478, 1000]]
    for record, i in zip(records, range(len(reader))):
        sample = reader[i]
        assert sample.class_ids.tolist() == record.class_ids
        assert sample.attributes == [inst.attributes for inst in record.instances]
        for mask, inst in zip(sample.masks, record.instances):
            full = rle.decode(inst.rle, record.height, record.width)
            assert np.array_equal(mask, resize.resize_mask(full, mask.shape))
            # Fidelity, measured at full size: at least that of nearest-neighbour sampling, and
            # high for all but the smallest parts (a 600 px shoe keeps IoU 0.83).
            iou = upscaled_iou(mask, full)
            nearest = cv2.resize(np.ascontiguousarray(full), mask.shape[::-1], interpolation=cv2.INTER_NEAREST)
            assert iou >= upscaled_iou(nearest, full)
            assert iou > 0.8 and (full.sum() < 20000 or iou > 0.95), (record.image_id, inst.class_id, iou)


def upscaled_iou(small: np.ndarray, full: np.ndarray) -> float:
    back = cv2.resize(small, full.shape[::-1], interpolation=cv2.INTER_NEAREST)
    return (back & full).sum() / (back | full).sum()


FORKED_READER = None  # set before forking: worker processes inherit it, open handle included


def forked_sample_sums(i: int) -> tuple[int, int, bool]:
    sample = FORKED_READER[i]
    return int(sample.image.sum()), int(sample.masks.sum()), FORKED_READER._pid == os.getpid()


def test_reader_is_picklable_and_reopens_per_process(dataset, tmp_path):
    global FORKED_READER
    build_cache(dataset, "train", tmp_path / "train.h5", CacheConfig(max_size=128))
    reader = CacheReader(tmp_path / "train.h5")
    first = reader[1]  # the parent now holds an open handle
    copy = pickle.loads(pickle.dumps(reader))
    assert copy._file is None
    assert np.array_equal(copy[1].image, first.image) and np.array_equal(copy[1].masks, first.masks)
    # Same samples in the workers, each read through a handle that worker opened itself.
    expected = [(int(reader[i].image.sum()), int(reader[i].masks.sum()), True) for i in range(len(reader))]
    FORKED_READER = reader
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:  # as DataLoader's workers
        assert list(pool.map(forked_sample_sums, range(len(reader)))) == expected
    assert np.array_equal(reader[-3].image, first.image)
    with pytest.raises(IndexError):
        reader[4]


def test_test_split_has_images_only(dataset, tmp_path):
    summary = build_cache(dataset, "test", tmp_path / "test.h5", CacheConfig(max_size=128))
    reader = CacheReader(tmp_path / "test.h5")
    assert summary.instances == 0 and reader.image_ids == ["test000", "test001"]
    assert reader[1].masks.shape == (0, 96, 128) and reader[1].image.shape == (96, 128, 3)
    # With a sample_submission.csv, its ImageIds (sorted) are the split.
    pd.DataFrame({"ImageId": ["test001", "test001"], "EncodedPixels": "", "ClassId": 0, "AttributesIds": ""}).to_csv(
        dataset / "sample_submission.csv", index=False)
    build_cache(dataset, "test", tmp_path / "test.h5", CacheConfig(max_size=128))
    assert CacheReader(tmp_path / "test.h5").image_ids == ["test001"]


def test_stale_cache_is_refused(dataset, tmp_path):
    path = tmp_path / "train.h5"
    config = CacheConfig(max_size=128)
    build_cache(dataset, "train", path, config)
    current = fingerprint(dataset, "train", config)
    verify(path, current)
    assert fingerprint(dataset, "train", CacheConfig(max_size=96)) != current
    assert fingerprint(dataset, "train", CacheConfig(max_size=128, jpeg_quality=50)) == current  # unused by raw
    with open(dataset / "train.csv", "a") as stream:
        stream.write("train001,1 5,300,400,6,\n")
    changed = fingerprint(dataset, "train", config)
    assert changed != current
    with pytest.raises(InputError, match="stale cache"):
        CacheReader(path, changed)
    (dataset / "train" / "extra.jpg").write_bytes(b"x")
    assert fingerprint(dataset, "train", config) not in (current, changed)
    with h5py.File(path, "a") as file:
        file.attrs["format_version"] = 0
    with pytest.raises(InputError, match="stale cache"):
        CacheReader(path)


def test_interrupted_build_leaves_nothing_usable(dataset, tmp_path, monkeypatch):
    path = tmp_path / "train.h5"
    build_cache(dataset, "train", path, CacheConfig(max_size=128))
    before = path.read_bytes()
    prepare = cache_build.prepare
    calls = []

    def interrupted(task):
        calls.append(task)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return prepare(task)

    monkeypatch.setattr(cache_build, "prepare", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_cache(dataset, "train", path, CacheConfig(max_size=96))
    assert path.read_bytes() == before  # the previous cache, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "train.h5"]  # no temporary left
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        build_cache(dataset, "train", tmp_path / "new.h5", CacheConfig(max_size=96))
    assert not (tmp_path / "new.h5").exists()


def test_killed_build_leaves_only_an_incomplete_temporary(dataset, tmp_path):
    # SIGKILL right after the first batch reaches the file: no cleanup code runs at all.
    script = f"""
        import os, signal
        from pipeline.data import cache_build
        from pipeline.data.cache_format import CacheConfig
        flush = cache_build.CacheWriter.flush
        def flush_then_die(self):
            flush(self)
            if self.num_images:
                self.file.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        cache_build.CacheWriter.flush = flush_then_die
        cache_build.build_cache({str(dataset)!r}, "train", {str(tmp_path / "train.h5")!r}, CacheConfig(max_size=128),
                                batch_bytes=1)
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT)
    assert result.returncode == -9
    assert not (tmp_path / "train.h5").exists()
    (leftover,) = [p for p in tmp_path.iterdir() if p.name != "data"]
    assert leftover.name.startswith(".train.h5.")
    with pytest.raises(InputError, match="incomplete cache"):
        verify(leftover)


def test_bad_image_names_file_and_csv_line(dataset, tmp_path):
    path = tmp_path / "train.h5"
    build_cache(dataset, "train", path, CacheConfig(max_size=128))
    before = path.read_bytes()
    data = (dataset / "train" / "train002.jpg").read_bytes()
    (dataset / "train" / "train002.jpg").write_bytes(data[: len(data) // 2])
    for workers in (0, 1):
        with pytest.raises(InputError) as error:
            build_cache(dataset, "train", path, CacheConfig(max_size=128), workers=workers)
        assert error.value.path.endswith("train002.jpg")
        assert "cannot decode image" in error.value.message and "train.csv line 11)" in error.value.message
    (dataset / "train" / "train002.jpg").unlink()
    with pytest.raises(InputError, match="image file not found"):
        build_cache(dataset, "train", path, CacheConfig(max_size=128))
    assert path.read_bytes() == before


def test_cli_builds_then_skips_then_rebuilds(dataset, tmp_path, capsys):
    out = tmp_path / "cache"
    args = ["--params", str(ROOT / "params.yaml"), "cache", "--root", str(dataset), "--out-dir", str(out),
            "--max-size", "128", "--workers", "1"]
    assert main(args) == 0
    assert "train.h5: 4 images, 17 instances" in capsys.readouterr().out
    assert len(CacheReader(out / "test.h5")) == 2
    assert main(args) == 0
    assert capsys.readouterr().out.count("up to date") == 2
    assert main(args[:-2] + ["--workers", "0", "--codec", "jpeg", "--split", "train"]) == 0
    printed = capsys.readouterr().out
    assert "rebuilding (stale cache" in printed and "train.h5: 4 images" in printed
    assert CacheReader(out / "train.h5").codec == "jpeg"
    (dataset / "test" / "test001.jpg").write_bytes(b"not a jpeg")
    assert main(args) == 2
    assert "test001.jpg: cannot decode image" in capsys.readouterr().err


def peak_memory_increase(dataset: Path, out: Path) -> int:
    """Bytes of peak RSS a build adds to a process that has already imported everything."""
    script = f"""
        from pipeline.data.cache_format import CacheConfig
        from pipeline.data.cache_build import build_cache
        def status(key):
            line = next(l for l in open("/proc/self/status") if l.startswith(key))
            return int(line.split()[1]) * 1024
        before = status("VmRSS:")
        build_cache({str(dataset)!r}, "train", {str(out)!r}, CacheConfig(max_size=512), batch_bytes=2 << 20)
        print(status("VmHWM:") - before)
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_peak_memory_does_not_grow_with_the_number_of_images(tmp_path):
    small = write_dataset(tmp_path / "small", train_images=4, test_images=0, height=768, width=768)
    large = write_dataset(tmp_path / "large", train_images=40, test_images=0, height=768, width=768)
    # The 40 images are 31 MB at cache size (and 70 MB decoded): holding them would show.
    growth = peak_memory_increase(large, tmp_path / "large.h5") - peak_memory_increase(small, tmp_path / "small.h5")
    assert growth < 12 << 20, json.dumps({"growth_mb": growth / 2**20})


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(0, 4), st.integers(0, 2**32 - 1)),
                min_size=1, max_size=6), st.integers(1, 400))
def test_writer_and_reader_round_trip_any_masks(tmp_path_factory, images, batch_bytes):
    """Empty, full and edge-touching masks, images with no instance, batches of any size."""
    path = tmp_path_factory.mktemp("cache") / "masks.h5"
    prepared, expected_masks = [], []
    for index, (height, width, count, seed) in enumerate(images):
        rng = np.random.default_rng(seed)
        masks = [(rng.random((height, width)) < rng.choice([0, 0.3, 1])).astype(np.uint8) for _ in range(count)]
        prepared.append(cache_build.PreparedImage(
            image_id=f"image{index}", image_data=rng.integers(0, 256, height * width * 3, dtype=np.uint8),
            size=(height, width), orig_size=(2 * height, 2 * width),
            class_ids=np.arange(count, dtype=np.int16), boxes=np.array([resize.mask_box(m) for m in masks]).reshape(-1, 4),
            attributes=[tuple(range(k)) for k in range(count)],
            mask_counts=[rle.mask_to_counts(m).astype(np.int32) for m in masks],
        ))
        expected_masks.append(masks)
    with h5py.File(path, "w") as file:
        writer = cache_build.CacheWriter(file, "raw", batch_bytes)
        for item in prepared:
            writer.append(item)
        writer.finish({"format_version": FORMAT_VERSION, "fingerprint": "test", "codec": "raw"})
    reader = CacheReader(path)
    assert reader.image_ids == [item.image_id for item in prepared]
    for i, (item, masks) in enumerate(zip(prepared, expected_masks)):
        sample = reader[i]
        assert np.array_equal(sample.image.ravel(), item.image_data)
        assert sample.masks.shape == (len(masks), *item.size)
        assert all(np.array_equal(a, b) for a, b in zip(sample.masks, masks))
        assert np.array_equal(sample.boxes, item.boxes) and sample.attributes == item.attributes
        assert sample.orig_size == item.orig_size


def test_on_error_skip_leaves_bad_rows_out_and_reports_them(tmp_path, capsys):
    from pipeline.data.cache_reader import CacheReader

    root = tmp_path / "data"
    (root / "train").mkdir(parents=True)
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(root / "train" / "a.jpg")
    (root / "train.csv").write_text(
        "ImageId,EncodedPixels,Height,Width,ClassId,AttributesIds\n"
        "a,1 10,8,8,0,\n"
        "a,1 2 3,8,8,1,\n"  # odd RLE: line 3
        "a,20 5,8,8,31,\n"
    )
    out = tmp_path / "cache"
    assert main(["cache", "--root", str(root), "--out-dir", str(out), "--split", "train", "--workers", "0"]) == 2
    assert "train.csv:3: RLE has an odd number" in capsys.readouterr().err
    assert not (out / "train.h5").exists()
    assert main(["cache", "--root", str(root), "--out-dir", str(out), "--split", "train", "--workers", "0",
                 "--on-error", "skip"]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "train.csv:3:" in err and "1 bad row(s) skipped" in err
    assert CacheReader(out / "train.h5")[0].class_ids.tolist() == [0, 31]


def test_file_digest_hashes_the_bytes_in_blocks_and_feeds_a_given_digest(tmp_path):
    import hashlib

    from pipeline.data.cache_format import file_digest

    path = tmp_path / "weights.bin"
    data = bytes(range(256)) * 8193  # more than two 1 MiB blocks
    path.write_bytes(data)
    assert file_digest(path).hexdigest() == hashlib.sha256(data).hexdigest()
    fed = hashlib.sha256(b"prefix")
    assert file_digest(path, fed) is fed and fed.hexdigest() == hashlib.sha256(b"prefix" + data).hexdigest()
    with pytest.raises(InputError, match="file not found"):
        file_digest(tmp_path / "missing.bin")

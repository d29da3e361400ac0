"""Cache reads against decoding every sample on the fly from the original JPEG and CSV.

On the fly means `cache_build.decode_sample`: decode the JPEG, shrink it to `max_size`, decode
each instance's RLE at full size and shrink it (the CSV is parsed once, beforehand, and not
timed per sample). The cache side is `CacheReader[i]`: image, masks, boxes, classes and
attributes at the same resolution. Both run in one thread, samples in a random order, over
files the page cache already holds; the best of `--repeats` passes counts.

Sizes compare the cache file's bytes per image with the image alone re-encoded as JPEG at
cache resolution, with the compact codec's quality.

The dataset is the synthetic generator's (figures in patterned garments on gradients, so JPEG
decoding costs what it costs on photos rather than on flat colour or noise) at ~1000 px, with
`--instances` annotations kept per image, or any Kaggle-layout `--root`.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline.data import resize
from pipeline.data.cache_build import build_cache, decode_sample, list_tasks
from pipeline.data.cache_format import CODECS, CacheConfig
from pipeline.data.cache_reader import CacheReader
from pipeline.synthetic.fashionpedia import generate


def add_arguments(parser) -> None:
    parser.add_argument("--images", type=int, default=64, help="synthetic images (default: %(default)s)")
    parser.add_argument("--instances", type=int, default=8, help="annotations kept per synthetic image")
    parser.add_argument("--side", type=int, default=1000, help="mean longest side of the originals")
    parser.add_argument("--root", help="benchmark this Kaggle-layout dataset instead of a synthetic one")
    parser.add_argument("--max-size", type=int, default=512, help="cache resolution (default: %(default)s)")
    parser.add_argument("--jpeg-quality", type=int, default=90, help="compact codec quality (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes, best kept (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)


def synthesize(out: Path, images: int, instances: int, side: int, seed: int) -> Path:
    """Synthetic Kaggle-layout train split with at most `instances` random annotations per image."""
    root = generate(out, images, 0, seed, min_size=int(side * 0.9), max_size=int(side * 1.1), large_fraction=0)
    frame = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    kept = [rows.sample(min(len(rows), instances), random_state=rng) for _, rows in frame.groupby("ImageId", sort=False)]
    pd.concat(kept).sort_index().to_csv(root / "train.csv", index=False)
    return root


def best_rates(readers: dict, count: int, repeats: int, seed: int) -> dict[str, float]:
    """Samples/s of each `read(i)` in `readers`, best of `repeats` passes over one random order.

    The passes take turns, so a busy spell on the machine slows every side alike.
    """
    order = np.random.default_rng(seed).permutation(count).tolist()
    best = dict.fromkeys(readers, float("inf"))
    for _ in range(repeats):
        for name, read in readers.items():
            start = time.perf_counter()
            for i in order:
                read(i)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: count / seconds for name, seconds in best.items()}


def run(args, settings) -> dict:
    cv2.setNumThreads(1)  # one core per sample, as in a DataLoader worker
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.root:
            root = Path(args.root)
        else:
            root = synthesize(scratch / "data", args.images, args.instances, args.side, args.seed)
        start = time.perf_counter()
        tasks = list_tasks(root, "train", CacheConfig(args.max_size))
        csv_seconds = time.perf_counter() - start
        jpeg_reference = float(np.mean([
            resize.encode_jpeg(decode_sample(task).image, args.jpeg_quality).size for task in tasks
        ]))
        builds = {
            codec: build_cache(root, "train", scratch / f"{codec}.h5", CacheConfig(args.max_size, codec, args.jpeg_quality))
            for codec in CODECS
        }
        readers = {codec: CacheReader(scratch / f"{codec}.h5") for codec in CODECS}
        sizes = readers["raw"].sizes.tolist()

        def image_only(i):  # the JPEG part of the on-the-fly path alone, for scale
            return resize.resize_image(resize.read_image(tasks[i].path), sizes[i])

        rates = best_rates(
            {"on_the_fly": lambda i: decode_sample(tasks[i]), "image_only": image_only,
             **{codec: reader.__getitem__ for codec, reader in readers.items()}},
            len(tasks), args.repeats, args.seed,
        )
        for reader in readers.values():
            reader.close()
        on_the_fly = rates["on_the_fly"]
        codecs = {
            codec: {
                "read_speedup": round(rates[codec] / on_the_fly, 2),
                "bytes_per_image_vs_jpeg": round(summary.bytes / summary.images / jpeg_reference, 3),
                "samples_per_s": round(rates[codec], 1),
                "bytes_per_image": round(summary.bytes / summary.images),
                "build_s": round(summary.seconds, 2),
            }
            for codec, summary in builds.items()
        }
        originals = [task.path.stat().st_size for task in tasks]
        pixels = [task.record.height * task.record.width for task in tasks]
        return {
            "codecs": codecs,
            "on_the_fly_samples_per_s": round(on_the_fly, 1),
            "on_the_fly_image_only_samples_per_s": round(rates["image_only"], 1),
            "jpeg_bytes_per_image_at_cache_size": round(jpeg_reference),
            "jpeg_quality": args.jpeg_quality,
            "dataset": {
                "root": str(args.root) if args.root else "synthetic",
                "images": len(tasks),
                "instances_per_image": round(sum(len(t.record.instances) for t in tasks) / len(tasks), 2),
                "original_megapixels": round(float(np.mean(pixels)) / 1e6, 3),
                "original_jpeg_bits_per_pixel": round(8 * sum(originals) / sum(pixels), 2),
                "csv_parse_s": round(csv_seconds, 3),
            },
            "max_size": args.max_size,
            "threads": 1,
            "goals": {
                "raw_read_speedup_min": 10, "jpeg_read_speedup_min": 3, "jpeg_bytes_per_image_vs_jpeg_max": 2,
                "met": codecs["raw"]["read_speedup"] >= 10 and codecs["jpeg"]["read_speedup"] >= 3
                and codecs["jpeg"]["bytes_per_image_vs_jpeg"] <= 2,
            },
        }

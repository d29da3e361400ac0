"""`python -m pipeline synth`: the embedded synthetic Fashionpedia-like dataset, in Kaggle layout.

CI and `make repro` have no real data, so they train and evaluate on this: `train/` and `test/`
JPEGs, `train.csv` (Kaggle RLE masks with the real category and attribute ids),
`sample_submission.csv` and a copy of the shipped `label_descriptions.json`. The scenes themselves
are drawn by `pipeline.data.scene`. The same seed gives byte-identical files; the dataset is
built in a sibling temporary directory and renamed onto the output, so an interrupted run never
leaves half a dataset behind.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pandas as pd

from pipeline import io, params
from pipeline.data import ontology, rle
from pipeline.data.annotations import TRAIN_COLUMNS
from pipeline.data.scene.compose import render
from pipeline.data.scene.labels import Labels
from pipeline.errors import InputError

SUBMISSION_COLUMNS = ("ImageId", "EncodedPixels", "ClassId", "AttributesIds")
LARGE_SIDE = (2048, 2600)  # longest side of the large images, as in the real data's biggest photos
JPEG_QUALITY = 90
MIN_AREA_PIXELS = 60  # instances whose visible area is below this, or below
MIN_AREA_FRACTION = 0.001  # this fraction of the image, are left out of the ground truth


@dataclass(frozen=True)
class SynthConfig:
    train_images: int = 64
    test_images: int = 16
    seed: int = 0
    min_size: int = 400  # longest image side of the ordinary images, in pixels
    max_size: int = 1200
    large_fraction: float = 0.1  # share of images with a side over 2000 px

    def validate(self, source: str | Path | None = None) -> SynthConfig:
        """Checked copy with the right types; InputError naming `source` otherwise."""
        try:
            checked = SynthConfig(*(_integer(name, getattr(self, name)) for name in INTEGER_FIELDS),
                                  large_fraction=float(self.large_fraction))
        except (TypeError, ValueError) as error:
            raise InputError(f"synth: {error}", source) from None
        problems = [
            (checked.train_images < 1, "train_images must be >= 1"),
            (checked.test_images < 0, "test_images must be >= 0"),
            (checked.seed < 0, "seed must be >= 0"),
            (checked.min_size < 64, "min_size must be >= 64"),
            (checked.max_size < checked.min_size, "max_size must be >= min_size"),
            (not 0.0 <= checked.large_fraction <= 1.0, "large_fraction must be within 0..1"),
        ]
        for bad, message in problems:
            if bad:
                raise InputError(f"synth: {message}", source)
        return checked


INTEGER_FIELDS = ("train_images", "test_images", "seed", "min_size", "max_size")


def _integer(name: str, value) -> int:
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Summary:
    path: Path
    train_images: int
    test_images: int
    instances: int
    classes: int
    seconds: float


def image_id(seed: int, split: str, index: int) -> str:
    """A Kaggle-looking 32-hex id, fixed by the seed, split and position."""
    return hashlib.md5(f"synth:{seed}:{split}:{index}".encode()).hexdigest()


def image_size(rng: np.random.Generator, config: SynthConfig) -> tuple[int, int]:
    """(height, width): mostly portrait as in Fashionpedia, some landscape and square-ish ones."""
    if rng.random() < config.large_fraction:
        longest = rng.uniform(*LARGE_SIDE)
    else:
        longest = rng.uniform(config.min_size, config.max_size)
    kind = rng.random()
    ratio = rng.uniform(1.2, 1.7) if kind < 0.7 else rng.uniform(1.0, 1.15) if kind < 0.85 else rng.uniform(1.2, 1.6)
    shortest = longest / ratio
    height, width = (longest, shortest) if kind < 0.85 else (shortest, longest)
    return int(round(height)), int(round(width))


def render_image(config: SynthConfig, split: str, index: int, labels: Labels):
    """(ImageId, RGB image, visible instances) of one image, independent of every other image."""
    rng = np.random.default_rng([config.seed, ("train", "test").index(split), index])
    height, width = image_size(rng, config)
    min_area = max(MIN_AREA_PIXELS, int(MIN_AREA_FRACTION * height * width))
    image, instances = render(rng, height, width, labels, min_area)
    return image_id(config.seed, split, index), image, instances


def write_jpeg(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path.name}")
    path.write_bytes(encoded.tobytes())


@contextlib.contextmanager
def staging_directory(out: Path, marker: str = "train.csv") -> Iterator[Path]:
    """Yield an empty sibling directory of `out`; replace `out` with it only if the block succeeds.

    A non-empty `out` is only replaced if it holds `marker` (a dataset this command wrote).
    """
    if out.exists() and not out.is_dir():
        raise InputError("output exists and is not a directory", out)
    if out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise InputError(f"refusing to replace a non-empty directory that holds no {marker}", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield staging
        if out.exists():  # a directory cannot be renamed over a non-empty one: move the old aside
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old)
        else:
            os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build(out: str | Path, config: SynthConfig) -> Summary:
    """Generate the dataset into `out` (replacing a previous one); what was written."""
    config = config.validate()
    out = Path(out)
    start = time.perf_counter()
    labels = Labels(ontology.load())
    rows, classes = [], set()
    with staging_directory(out) as staging:
        for split, count in (("train", config.train_images), ("test", config.test_images)):
            (staging / split).mkdir()
            for index in range(count):
                name, image, instances = render_image(config, split, index, labels)
                write_jpeg(staging / split / f"{name}.jpg", image)
                if split == "test":
                    continue
                height, width = image.shape[:2]
                for instance in instances:
                    encoded = rle.encode(instance.full_mask(height, width))
                    attributes = ",".join(map(str, instance.attributes))
                    rows.append((name, encoded, height, width, instance.class_id, attributes))
                    classes.add(instance.class_id)
        io.write_csv(staging / "train.csv", pd.DataFrame(rows, columns=TRAIN_COLUMNS))
        # One placeholder row per test image, as Kaggle's sample submission has.
        test_ids = [image_id(config.seed, "test", i) for i in range(config.test_images)]
        placeholder = pd.DataFrame([(i, "1 1", 23, "") for i in test_ids], columns=SUBMISSION_COLUMNS)
        io.write_csv(staging / "sample_submission.csv", placeholder)
        shutil.copyfile(ontology.DEFAULT_PATH, staging / "label_descriptions.json")
    return Summary(out, config.train_images, config.test_images, len(rows), len(classes),
                   time.perf_counter() - start)


def generate(out_dir: str | Path, train_images: int = 64, test_images: int = 16, seed: int = 0,
             **sizes) -> Path:
    """Generate the dataset into `out_dir`; `sizes` are the other `SynthConfig` fields.

    A tiny, fast set for tests of other modules: `generate(tmp, 4, 1, min_size=160, max_size=240,
    large_fraction=0)`.
    """
    return build(out_dir, SynthConfig(train_images, test_images, seed, **sizes)).path


def add_arguments(parser) -> None:
    parser.add_argument("--out", help="output directory, replaced atomically (default: params synth.out)")
    parser.add_argument("--train-images", type=int, help="number of training images")
    parser.add_argument("--test-images", type=int, help="number of test images")
    parser.add_argument("--seed", type=int, help="random seed; the same seed gives identical files")
    parser.add_argument("--min-size", type=int, help="smallest longest side of ordinary images (px)")
    parser.add_argument("--max-size", type=int, help="largest longest side of ordinary images (px)")
    parser.add_argument("--large-fraction", type=float, help="share of images with a side over 2000 px")


def run(args) -> int:
    defaults = {"out": "data/synthetic", **asdict(SynthConfig())}
    cfg = params.section(args, "synth", defaults)
    unknown = sorted(set(cfg) - set(defaults))
    if unknown:
        raise InputError(f"synth: unknown key {unknown[0]!r}", args.params)
    out = cfg.pop("out")
    config = SynthConfig(**cfg).validate(args.params)
    summary = build(out, config)
    print(f"synth: {summary.train_images} train + {summary.test_images} test images, "
          f"{summary.instances} instances of {summary.classes} classes in {summary.seconds:.1f} s -> {summary.path}")
    return 0

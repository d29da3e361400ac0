"""The rehearsal's table: each command's seconds and peak memory, and its cost per image carried over
to the real sets' sizes, with what that assumes.

A stage's real work is its images here times the real count, so its extrapolation is seconds per
image here times the images of the real run: linear in images (each command's start-up, imports and
model building, counted in its per-image cost: with a handful of images an upper bound), at the
generated sets' size mix. Training is capped at a few optimizer steps: not extrapolated (the real
run's steps are listed instead). Stages that do the same work whatever the data are not either.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from pipeline.rehearsal.measure import Usage

# The real sets: iMaterialist 2020's train and test images; DeepFashion2's public release (its README).
REAL_IMAGES = {"train": 45_623, "test": 3_200, "df2_train": 191_961, "df2_validation": 32_153}
FIXED = ("profile", "weights", "synth", "synth-df2")  # the same work in a real run (not per image)
LINEAR = {  # command (and split) -> the images it handles: a key of REAL_IMAGES, or cache's train + test
    "cache": "train+test", "folds": "train", "predict oof": "train", "predict test": "test", "gather": "train",
    "report": "train", "ensemble oof": "train", "ensemble test": "test", "tune": "train", "submit": "test",
    "validate-submission": "test", "cache-df2 train": "df2_train", "cache-df2 validation": "df2_validation",
    "predict-df2": "df2_validation", "report-df2": "df2_validation", "notebook": "test",
}


@dataclass(frozen=True)
class Row:
    stage: str
    returncode: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    images: int | None          # images it handled here
    real_images: int | None     # images the real run's stage handles; None: not extrapolated
    assumes: str

    @property
    def real_hours(self) -> float | None:
        if not self.images or self.real_images is None:
            return None
        return round(self.seconds / self.images * self.real_images / 3600, 2)


def command(argv: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """(the pipeline command, its `--option value` pairs) of `-m pipeline [--params P] CMD ...`."""
    words = list(argv[argv.index("pipeline") + 1:]) if "pipeline" in argv else list(argv)
    options, name, i = {}, None, 0
    while i < len(words):
        if words[i].startswith("--") and i + 1 < len(words) and not words[i + 1].startswith("--"):
            options[words[i][2:]] = words[i + 1]
            i += 2
            continue
        if name is None and not words[i].startswith("-"):
            name = words[i]
        i += 1
    return name or "?", options


def stage_name(argv: tuple[str, ...]) -> str:
    """The DVC stage a command is (`train@attribute_mask_rcnn-0`, `predict-test@...`, `train-df2`)."""
    name, o = command(argv)
    if name == "train":
        return f"train@{o['model']}-{o['fold']}" if "fold" in o else "train-df2"
    if name == "predict":
        return f"predict-{o.get('split')}@{o.get('model')}-{o.get('fold')}"
    if name == "gather":
        return f"gather@{o.get('model')}"
    if name == "ensemble":
        return f"ensemble-{o.get('split')}"
    if name == "cache-df2":
        return f"cache-df2@{o.get('split')}"
    return name


@dataclass(frozen=True)
class Counts:
    """The rehearsal's data: image counts per split and each fold's held-out images."""

    train: int
    test: int
    df2_train: int
    df2_validation: int
    held_out: dict[int, int]   # fold -> images
    folds: int


def row(usage: Usage, counts: Counts, real_steps: dict[str, int]) -> Row:
    """The table row of one measured stage command."""
    name, options = command(usage.argv)
    stage = stage_name(usage.argv)
    measured = functools.partial(Row, stage, usage.returncode, usage.seconds, usage.cpu_seconds, usage.peak_rss_mb)
    key = f"{name} {options['split']}" if name in ("predict", "ensemble", "cache-df2") else name
    if name in FIXED:
        return measured(None, None, "the same work in a real run: not extrapolated")
    if name == "train":
        steps = real_steps.get(stage)
        return measured(None, None, f"steps capped: not extrapolated (the real run: {steps:,} optimizer steps)"
                        if steps else "steps capped: not extrapolated")
    if name == "retrieve":
        return measured(counts.df2_validation, None,
                        "queries x gallery, not linear: not extrapolated (bench retrieval measures the real size)")
    if key not in LINEAR:
        return measured(None, None, "not extrapolated")
    return measured(*images(key, options, counts), "linear in images (start-up included: an upper bound)")


def images(key: str, options: dict[str, str], counts: Counts) -> tuple[int, int]:
    """(images here, images in the real run) of a linear stage."""
    split = LINEAR[key]
    if key == "predict oof":  # one fold's held-out images: its share of the real training images
        return counts.held_out.get(int(options["fold"]), 0), math.ceil(REAL_IMAGES["train"] / counts.folds)
    if split == "train+test":
        return counts.train + counts.test, REAL_IMAGES["train"] + REAL_IMAGES["test"]
    return getattr(counts, split), REAL_IMAGES[split]


HEADER = ("stage", "rc", "seconds", "CPU s", "peak MB", "images", "s/image", "real images", "real h", "assumes")


def table(rows: list[Row]) -> str:
    """The rows as an aligned plain-text table."""
    cells = [HEADER] + [(r.stage, str(r.returncode), f"{r.seconds:.1f}", f"{r.cpu_seconds:.1f}", f"{r.peak_rss_mb:.0f}",
                         "" if r.images is None else str(r.images),
                         f"{r.seconds / r.images:.2f}" if r.images else "",
                         "" if r.real_images is None else f"{r.real_images:,}",
                         "" if r.real_hours is None else f"{r.real_hours:,.2f}", r.assumes) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[-1] for line in cells)

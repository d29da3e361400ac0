"""`python -m pipeline infer IMAGE... --weights W.pt [W2.pt ...] --out DIR`: predictions for single photos.

No dataset, cache or params file needed: each photo is read and shrunk to the cache's longest side
exactly as `cache` would (`resize.read_image`, `target_size`, `resize_image`), then predicted as
`predict` predicts a cached image, masks pasted at the photo's original size. Per photo it prints
every instance (category, score, attribute names) and writes `DIR/<stem>.csv` (prediction rows,
`postprocess.COLUMNS`) and `DIR/<stem>.png` (the photo with the instances drawn, same size).
With several weights files each model predicts and `ensemble`'s method (params `ensemble`)
merges their detections, every model weighing the same.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io, params
from pipeline.data import cache, resize
from pipeline.errors import InputError
from pipeline.inference import overlay
from pipeline.inference.predict import load_model
from pipeline.training.predict import predict

DEFAULTS = {"score_threshold": 0.3, "max_instances": 20, "max_size": None}


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG or PNG photos of any size")
    parser.add_argument("--weights", nargs="+", required=True, help="model.pt file(s) written by train")
    parser.add_argument("--out", required=True, help="folder for <stem>.png and <stem>.csv")
    parser.add_argument("--score-threshold", type=float,
                        help="keep instances scoring at least this (default: params infer.score_threshold, 0.3)")
    parser.add_argument("--max-instances", type=int,
                        help="keep at most this many instances per photo, best first (default: params infer.max_instances, 20)")
    parser.add_argument("--max-size", type=int, help="longest side the model sees (default: params cache.max_size)")


def settings(args) -> dict:
    """params.yaml's `infer` section with the flags applied, checked; max_size from `cache` if unset."""
    cfg = params.section(args, "infer", DEFAULTS)
    if cfg["max_size"] is None:
        cfg["max_size"] = params.section(args, "cache", cache.DEFAULTS)["max_size"]
    if not 0.0 <= float(cfg["score_threshold"]) <= 1.0:
        raise InputError(f"infer: score_threshold must be in 0..1, got {cfg['score_threshold']!r}", args.params)
    if int(cfg["max_instances"]) < 1:
        raise InputError(f"infer: max_instances must be >= 1, got {cfg['max_instances']!r}", args.params)
    if not 16 <= int(cfg["max_size"]) <= 8192:
        raise InputError(f"infer: max_size must be in 16..8192, got {cfg['max_size']!r}", args.params)
    return cfg


class Photo:
    """One photo as `predict.predict` reads a cache: a one-image reader at cache resolution."""

    def __init__(self, path: str | Path, max_size: int):
        self.original = resize.read_image(path)
        size = self.original.shape[:2]
        self.image_ids = [Path(path).stem]
        self.orig_sizes = np.array([size])
        self.resized = resize.resize_image(self.original, resize.target_size(*size, max_size))

    def __len__(self) -> int:
        return 1

    def image(self, index: int) -> np.ndarray:
        return self.resized


def select(frame: pd.DataFrame, score_threshold: float, max_instances: int) -> pd.DataFrame:
    """Rows scoring at least `score_threshold`, best first, at most `max_instances`."""
    kept = frame[frame.Score >= score_threshold]
    return kept.sort_values("Score", ascending=False, kind="stable").head(max_instances).reset_index(drop=True)


def merge(frames: list[pd.DataFrame], weights: list[str], photo: Photo, labels, args) -> pd.DataFrame:
    """One photo's predictions of several models fused as `ensemble` fuses prediction files."""
    from pipeline.ensembling import ensemble
    from pipeline.ensembling.inputs import PredictionFile, image_detections

    if len(frames) == 1:
        return frames[0]
    _, config = ensemble.settings(args)
    image_id = photo.image_ids[0]
    # The ensembler reads CSV strings: each model's rows as if read back from its file.
    files = [PredictionFile(Path(w), 1.0, True) for w in weights]
    strings = [f.astype(str).reset_index(drop=True) for f in frames]
    detections = image_detections(files, strings, image_id, tuple(photo.orig_sizes[0].tolist()), labels)
    rows = ensemble.ensemble_image(detections, float(len(files)), 1.0, labels, config)
    return pd.DataFrame(rows, columns=frames[0].columns)


def describe(frame: pd.DataFrame, labels) -> list[str]:
    """One line per instance: rank, category, score, every attribute name."""
    lines = []
    for rank, row in enumerate(frame.itertuples(), 1):
        attributes = [labels.attribute_by_id[int(a)].name for a in str(row.AttributesIds).split(",") if a]
        lines.append(f"  {rank:2d}. {labels.category_by_id[int(row.ClassId)].name} {row.Score:.2f}"
                     + (f": {', '.join(attributes)}" if attributes else ""))
    return lines


def run(args) -> int:
    import torch

    from pipeline.data import ontology

    cfg = settings(args)
    stems = Counter(Path(p).stem for p in args.images)
    repeated = next((p for p in args.images if stems[Path(p).stem] > 1), None)
    if repeated:
        raise InputError(f"two images named {Path(repeated).stem}.*: their outputs would overwrite each other", repeated)
    labels = ontology.load()
    models = [load_model(w) for w in args.weights]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out)
    for path in args.images:
        photo = Photo(path, int(cfg["max_size"]))
        frames = [predict(model, photo, [0], labels, config.attribute_threshold, device) for model, config in models]
        frame = select(merge(frames, args.weights, photo, labels, args), float(cfg["score_threshold"]),
                       int(cfg["max_instances"]))
        stem = photo.image_ids[0]
        io.write_csv(out / f"{stem}.csv", frame)
        size = photo.original.shape[:2]
        drawn = overlay.draw(photo.original, overlay.instances_from_rows(frame.itertuples(), size, labels))
        overlay.write_png(out / f"{stem}.png", drawn)
        print(f"{path} ({size[1]}x{size[0]}): {len(frame)} instances -> {out / stem}.png, {out / stem}.csv")
        print("\n".join(describe(frame, labels)), flush=True)
    return 0

"""Predictions for single photos (`python -m pipeline infer IMAGE... --weights W.pt [W2.pt ...] --out DIR`).

No dataset, cache or params file needed: each photo is read and shrunk to the cache's longest side
exactly as `cache` would (`resize.read_image`, `target_size`, `resize_image`), then predicted as
`predict` predicts a cached image, masks pasted at the photo's original size. Per photo it prints
every instance (category, score, attribute names) and writes `DIR/<stem>.csv` (prediction rows,
`postprocess.COLUMNS`) and `DIR/<stem>.png` (the photo with the instances drawn, same size).
With several weights files each model predicts and `ensemble`'s method (params `ensemble`)
merges their detections, every model weighing the same.

A DeepFashion2 model (Match R-CNN) predicts alone, on photos shrunk to `df2.cache_max_size` as
its cache shrinks them: per photo it prints every item (number, category, score), draws the
landmarks whose heatmap peak reaches `landmark_threshold` as dots and writes `DIR/<stem>.json`
(each item's box, category, score, landmarks and mask). With `--gallery-index` (the index
`retrieve` or `predict-df2` wrote with the same model file) each item's line also lists its
`top` most similar shop items, which the JSON holds too.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import numpy as np
import pandas as pd
import torch
from pycocotools import mask as mask_utils

from pipeline import io
from pipeline.data import ontology, resize
from pipeline.data.deepfashion2.annotations import CATEGORY_BY_ID
from pipeline.ensembling.config import EnsembleConfig
from pipeline.ensembling.ensemble import ensemble_image
from pipeline.ensembling.inputs import PredictionFile, image_detections
from pipeline.errors import InputError
from pipeline.inference import overlay
from pipeline.inference.config import InferConfig
from pipeline.inference.deepfashion2.predict import predict_items
from pipeline.inference.deepfashion2.retrieval import read_index, top_matches
from pipeline.inference.predict import load_model, predict
from pipeline.models.factory import family


def check_models(weights: list[Path], models, gallery_index) -> bool:
    """Whether the model is a DeepFashion2 one, which predicts alone; a gallery index needs one that
    embeds items for retrieval."""
    datasets = [family(config.family).dataset for _, config in models]
    if "deepfashion2" in datasets and len(models) > 1:
        raise InputError("a DeepFashion2 model predicts alone: infer fuses Fashionpedia models only",
                         weights[datasets.index("deepfashion2")])
    if gallery_index and not (len(models) == 1 and family(models[0][1].family).retrieval):
        raise InputError(f"--gallery-index needs a model that embeds items for retrieval, not {models[0][1].family}",
                         weights[0])
    return datasets == ["deepfashion2"]


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


def merge(frames: list[pd.DataFrame], weights: list[Path], photo: Photo, labels, config: EnsembleConfig) -> pd.DataFrame:
    """One photo's predictions of several models fused as `ensemble` fuses prediction files."""
    if len(frames) == 1:
        return frames[0]
    image_id = photo.image_ids[0]
    # The ensembler reads CSV strings: each model's rows as if read back from its file.
    files = [PredictionFile(w, 1.0, True) for w in weights]
    strings = [f.astype(str).reset_index(drop=True) for f in frames]
    detections = image_detections(files, strings, image_id, tuple(photo.orig_sizes[0].tolist()), labels)
    rows = ensemble_image(detections, float(len(files)), 1.0, labels, config)
    return pd.DataFrame(rows, columns=frames[0].columns)


def describe(frame: pd.DataFrame, labels) -> list[str]:
    """One line per instance: rank, category, score, every attribute name."""
    lines = []
    for rank, row in enumerate(frame.itertuples(), 1):
        attributes = [labels.attribute_by_id[int(a)].name for a in str(row.AttributesIds).split(",") if a]
        lines.append(f"  {rank:2d}. {labels.category_by_id[int(row.ClassId)].name} {row.Score:.2f}"
                     + (f": {', '.join(attributes)}" if attributes else ""))
    return lines


def infer_instances(models, weights: list[Path], path: str, photo: Photo, labels, cfg: InferConfig,
                    ensemble: EnsembleConfig, out: Path, device) -> list[str]:
    """Predict, draw and write one photo with Fashionpedia model(s); the lines to print."""
    frames = [predict(model, photo, [0], labels, config.attribute_threshold, device) for model, config in models]
    frame = select(merge(frames, weights, photo, labels, ensemble), cfg.score_threshold, cfg.max_instances)
    stem, size = photo.image_ids[0], photo.original.shape[:2]
    io.write_csv(out / f"{stem}.csv", frame)
    drawn = overlay.draw(photo.original, overlay.instances_from_rows(frame.itertuples(), size, labels))
    overlay.write_png(out / f"{stem}.png", drawn)
    return [f"{path} ({size[1]}x{size[0]}): {len(frame)} instances -> {out / stem}.png, {out / stem}.csv",
            *describe(frame, labels)]


def photo_items(model, photo: Photo, cfg: InferConfig, device) -> list[dict]:
    """A Match R-CNN's items on `photo` scoring at least the threshold, best first, at most max_instances:
    number (from 1), DeepFashion2 category id and name, score, box, landmarks (the category's, in its
    order: x, y, heatmap peak), COCO RLE mask and embedding, all at the photo's original size."""
    sample = SimpleNamespace(image_id=photo.image_ids[0], source="user", image=photo.resized,
                             orig_size=photo.original.shape[:2])
    (image,) = predict_items(model, [sample], [0], device)
    order = np.argsort(-image.scores, kind="stable")
    kept = order[image.scores[order] >= cfg.score_threshold][: cfg.max_instances]
    items = []
    for number, k in enumerate(kept.tolist(), 1):
        category = CATEGORY_BY_ID[int(image.category_ids[k])]
        landmarks = image.landmarks[k, category.first_slot : category.first_slot + category.landmarks]
        items.append({"item": number, "category_id": category.id, "category": category.readme_name,
                      "score": float(image.scores[k]), "box": image.boxes[k].tolist(), "landmarks": landmarks.tolist(),
                      "segmentation": image.masks[k], "embedding": image.embeddings[k]})
    return items


def item_instance(item: dict, landmark_threshold: float) -> overlay.Instance:
    """An item to draw: its mask, '<number>: <category> <score>' and its landmarks peaking at the threshold or more."""
    landmarks = np.array(item["landmarks"]).reshape(-1, 3)
    return overlay.Instance(mask_utils.decode(item["segmentation"]), item["category_id"] - 1,
                            f"{item['item']}: {item['category']} {item['score']:.2f}",
                            landmarks[landmarks[:, 2] >= landmark_threshold, :2])


def describe_items(items: list[dict]) -> list[str]:
    """One line per item: number, category, score, then its shop matches (image, item, similarity) if any."""
    lines = []
    for item in items:
        matches = ", ".join(f"image {m['image_id']} item {m['item']} {m['similarity']:.2f}"
                            for m in item.get("matches", ()))
        line = f"  {item['item']:2d}. {item['category']} {item['score']:.2f}"
        lines.append(f"{line} -> {matches}" if matches else line)
    return lines


def infer_items(model, path: str, photo: Photo, index, cfg: InferConfig, out: Path, device) -> list[str]:
    """Predict, draw and write one photo with a DeepFashion2 model, matching its items against `index`
    if given (a `GalleryIndex`); the lines to print."""
    items = photo_items(model, photo, cfg, device)
    if index is not None:
        dim = model.config.embedding_size
        embeddings = np.array([item["embedding"] for item in items], np.float32).reshape(-1, dim)
        for item, matches in zip(items, top_matches(model.similarity_logits, embeddings, index, cfg.top)):
            item["matches"] = matches
    stem, size = photo.image_ids[0], photo.original.shape[:2]
    io.write_json(out / f"{stem}.json", [{k: v for k, v in item.items() if k != "embedding"} for item in items])
    drawn = overlay.draw(photo.original, [item_instance(item, cfg.landmark_threshold) for item in items])
    overlay.write_png(out / f"{stem}.png", drawn)
    return [f"{path} ({size[1]}x{size[0]}): {len(items)} items -> {out / stem}.png, {out / stem}.json",
            *describe_items(items)]


def infer_photos(images: list[str], weights: list[Path], out: Path, cfg: InferConfig, ensemble: EnsembleConfig,
                 gallery_index: Path | None, max_sizes: dict[str, int]) -> Iterator[str]:
    """Predict, draw and write each photo; the lines to print, photo by photo. `max_sizes`: the longest
    side per dataset (its cache's) when `cfg.max_size` is None."""
    stems = Counter(Path(p).stem for p in images)
    repeated = next((p for p in images if stems[Path(p).stem] > 1), None)
    if repeated:
        raise InputError(f"two images named {Path(repeated).stem}.*: their outputs would overwrite each other", repeated)
    models = [load_model(w) for w in weights]
    deepfashion2 = check_models(weights, models, gallery_index)
    index = read_index(gallery_index, weights[0], models[0][1].embedding_size) if gallery_index else None
    labels = None if deepfashion2 else ontology.load()
    max_size = cfg.max_size or max_sizes["deepfashion2" if deepfashion2 else "fashionpedia"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for path in images:
        photo = Photo(path, max_size)
        if deepfashion2:
            yield "\n".join(infer_items(models[0][0], path, photo, index, cfg, out, device))
        else:
            yield "\n".join(infer_instances(models, weights, path, photo, labels, cfg, ensemble, out, device))

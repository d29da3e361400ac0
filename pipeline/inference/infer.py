"""`python -m pipeline infer IMAGE... --weights W.pt [W2.pt ...] --out DIR`: predictions for single photos.

No dataset, cache or params file needed: each photo is read and shrunk to the cache's longest side
exactly as `cache` would (`resize.read_image`, `target_size`, `resize_image`), then predicted as
`predict` predicts a cached image, masks pasted at the photo's original size. Per photo it prints
every instance (category, score, attribute names) and writes `DIR/<stem>.csv` (prediction rows,
`postprocess.COLUMNS`) and `DIR/<stem>.png` (the photo with the instances drawn, same size).
With several weights files each model predicts and `ensemble`'s method (params `ensemble`)
merges their detections, every model weighing the same.

A Match R-CNN (DeepFashion2) model predicts alone, on photos shrunk to `df2.cache_max_size` as
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

import numpy as np
import pandas as pd

from pipeline import io, params
from pipeline.data import cache, resize
from pipeline.errors import InputError
from pipeline.inference import overlay
from pipeline.inference.predict import load_model
from pipeline.training.predict import predict

DEFAULTS = {"score_threshold": 0.3, "max_instances": 20, "max_size": None, "landmark_threshold": 0.0, "top": 5}
MATCH_RCNN = "match_rcnn"


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG or PNG photos of any size")
    parser.add_argument("--weights", nargs="+", required=True, help="model.pt file(s) written by train")
    parser.add_argument("--out", required=True, help="folder for <stem>.png and <stem>.csv")
    parser.add_argument("--score-threshold", type=float,
                        help="keep instances scoring at least this (default: params infer.score_threshold, 0.3)")
    parser.add_argument("--max-instances", type=int,
                        help="keep at most this many instances per photo, best first (default: params infer.max_instances, 20)")
    parser.add_argument("--max-size", type=int, help="longest side the model sees (default: params cache.max_size; "
                                                     "for a match_rcnn model df2.cache_max_size)")
    parser.add_argument("--landmark-threshold", type=float,
                        help="match_rcnn: draw the landmarks whose heatmap peak (a logit) is at least this "
                             "(default: params infer.landmark_threshold, 0)")
    parser.add_argument("--gallery-index", help="match_rcnn: a gallery index folder (retrieve --index, predict-df2's "
                                                "gallery_index) built with the same model file: list each item's "
                                                "most similar shop items")
    parser.add_argument("--top", type=int, help="shop items listed per item with --gallery-index "
                                                "(default: params infer.top, 5)")


def settings(args, df2: bool = False) -> dict:
    """params.yaml's `infer` section with the flags applied, checked; max_size, if unset, from `cache`
    (from `df2.cache_max_size` for a DeepFashion2 model)."""
    cfg = params.section(args, "infer", DEFAULTS)
    if cfg["max_size"] is None:
        cfg["max_size"] = df2_cache_max_size(args) if df2 else params.section(args, "cache", cache.DEFAULTS)["max_size"]
    problems = [
        (not 0.0 <= float(cfg["score_threshold"]) <= 1.0,
         f"score_threshold must be in 0..1, got {cfg['score_threshold']!r}"),
        (int(cfg["max_instances"]) < 1, f"max_instances must be >= 1, got {cfg['max_instances']!r}"),
        (not 16 <= int(cfg["max_size"]) <= 8192, f"max_size must be in 16..8192, got {cfg['max_size']!r}"),
        (int(cfg["top"]) < 1, f"top must be >= 1, got {cfg['top']!r}"),
    ]
    for bad, message in problems:
        if bad:
            raise InputError(f"infer: {message}", args.params)
    return cfg


def df2_cache_max_size(args) -> int:
    from pipeline.data.deepfashion2_params import load_df2

    return load_df2(params.load(args.params), args.params).cache_max_size


def check_models(args, models) -> bool:
    """Whether the model is a DeepFashion2 one (Match R-CNN), which predicts alone; `--gallery-index` needs it."""
    families = [config.family for _, config in models]
    if MATCH_RCNN in families and len(models) > 1:
        raise InputError("a match_rcnn model predicts alone: infer fuses Fashionpedia models only",
                         args.weights[families.index(MATCH_RCNN)])
    if args.gallery_index and families != [MATCH_RCNN]:
        raise InputError(f"--gallery-index needs a match_rcnn model, not {families[0]}", args.weights[0])
    return families == [MATCH_RCNN]


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


def infer_instances(models, path: str, photo: Photo, labels, cfg: dict, args, device) -> list[str]:
    """Predict, draw and write one photo with Fashionpedia model(s); the lines to print."""
    frames = [predict(model, photo, [0], labels, config.attribute_threshold, device) for model, config in models]
    frame = select(merge(frames, args.weights, photo, labels, args), float(cfg["score_threshold"]),
                   int(cfg["max_instances"]))
    out, stem, size = Path(args.out), photo.image_ids[0], photo.original.shape[:2]
    io.write_csv(out / f"{stem}.csv", frame)
    drawn = overlay.draw(photo.original, overlay.instances_from_rows(frame.itertuples(), size, labels))
    overlay.write_png(out / f"{stem}.png", drawn)
    return [f"{path} ({size[1]}x{size[0]}): {len(frame)} instances -> {out / stem}.png, {out / stem}.csv",
            *describe(frame, labels)]


def photo_items(model, photo: Photo, cfg: dict, device) -> list[dict]:
    """A Match R-CNN's items on `photo` scoring at least the threshold, best first, at most max_instances:
    number (from 1), DeepFashion2 category id and name, score, box, landmarks (the category's, in its
    order: x, y, heatmap peak), COCO RLE mask and embedding, all at the photo's original size."""
    from pipeline.data.deepfashion2 import CATEGORY_BY_ID
    from pipeline.inference.deepfashion2 import predict_items

    sample = SimpleNamespace(image_id=photo.image_ids[0], source="user", image=photo.resized,
                             orig_size=photo.original.shape[:2])
    (image,) = predict_items(model, [sample], [0], device)
    order = np.argsort(-image.scores, kind="stable")
    kept = order[image.scores[order] >= float(cfg["score_threshold"])][: int(cfg["max_instances"])]
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
    from pycocotools import mask as mask_utils

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


def infer_items(model, path: str, photo: Photo, index, cfg: dict, args, device) -> list[str]:
    """Predict, draw and write one photo with a Match R-CNN, matching its items against `index` if
    given (a `retrieve.GalleryIndex`); the lines to print."""
    from pipeline.inference.retrieve import top_matches

    items = photo_items(model, photo, cfg, device)
    if index is not None:
        dim = model.config.embedding_size
        embeddings = np.array([item["embedding"] for item in items], np.float32).reshape(-1, dim)
        for item, matches in zip(items, top_matches(model.similarity_logits, embeddings, index, int(cfg["top"]))):
            item["matches"] = matches
    out, stem, size = Path(args.out), photo.image_ids[0], photo.original.shape[:2]
    io.write_json(out / f"{stem}.json", [{k: v for k, v in item.items() if k != "embedding"} for item in items])
    drawn = overlay.draw(photo.original, [item_instance(item, float(cfg["landmark_threshold"])) for item in items])
    overlay.write_png(out / f"{stem}.png", drawn)
    return [f"{path} ({size[1]}x{size[0]}): {len(items)} items -> {out / stem}.png, {out / stem}.json",
            *describe_items(items)]


def run(args) -> int:
    import torch

    from pipeline.data import ontology
    from pipeline.inference.retrieve import read_index

    stems = Counter(Path(p).stem for p in args.images)
    repeated = next((p for p in args.images if stems[Path(p).stem] > 1), None)
    if repeated:
        raise InputError(f"two images named {Path(repeated).stem}.*: their outputs would overwrite each other", repeated)
    models = [load_model(w) for w in args.weights]
    df2 = check_models(args, models)
    cfg = settings(args, df2)
    index = None
    if args.gallery_index:
        index = read_index(Path(args.gallery_index), Path(args.weights[0]), models[0][1].embedding_size)
    labels = None if df2 else ontology.load()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for path in args.images:
        photo = Photo(path, int(cfg["max_size"]))
        if df2:
            lines = infer_items(models[0][0], path, photo, index, cfg, args, device)
        else:
            lines = infer_instances(models, path, photo, labels, cfg, args, device)
        print("\n".join(lines), flush=True)
    return 0

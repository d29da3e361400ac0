"""Consumer-to-shop retrieval with a trained Match R-CNN (the `retrieve` stage).

The cache (`cache-df2`) holds both sides: its shop photos are the gallery, its consumer photos the
queries. Every detected item of the gallery is embedded once into the index in DIR: the
embeddings as a `.npy` file read back as a memory map, the items' image ids, boxes (original
image pixels) and scores beside it, and `index.json`, written last, naming the model file and the
cache it was built from (a later call with both unchanged reuses it). Each consumer photo's items
are then ranked against the whole gallery by the match network's similarity: exhaustively, as
matrix products over blocks of the memory-mapped gallery (`deepfashion2.rank_gallery`). The learned
similarity, b - |w| . (a - b)^2, is a weighted Euclidean distance, so a nearest-neighbour library could
index the embeddings scaled by sqrt(|w|); an exact scan of the real gallery's ~37k items is a few
matrix products per block of queries, which no approximate index needs to beat (`bench retrieval`).
The output is the official retrieval results JSON that `evaluate-df2 --task retrieval` reads.
`infer --gallery-index DIR` queries the same index with single photos (`read_index`, `top_matches`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline import io, layout
from pipeline.data.cache_format import file_digest
from pipeline.data.deepfashion2.cache import Df2CacheReader
from pipeline.errors import InputError
from pipeline.inference.deepfashion2.predict import (RANKS, detected_items, detection_results, predict_items,
                                                    rank_gallery, retrieval_entries)
from pipeline.inference.predict import load_model
from pipeline.models.factory import family


INDEX_FORMAT = 1
META = "index.json"
ARRAYS = ("embeddings", "image_ids", "boxes", "scores")


@dataclass
class GalleryIndex:
    embeddings: np.ndarray  # (G, D) float32, a memory map
    image_ids: np.ndarray  # (G,) int64
    boxes: np.ndarray  # (G, 4) x1, y1, x2, y2 in original image pixels
    scores: np.ndarray  # (G,)


def identity(weights: Path, reader, gallery_threshold: float) -> dict:
    """What an index depends on: the model file's bytes, the cache and the gallery threshold."""
    return {"format": INDEX_FORMAT, "model_sha256": file_digest(weights).hexdigest(),
            "cache_fingerprint": str(reader.attributes["fingerprint"]), "gallery_threshold": gallery_threshold}


def open_index(folder: Path, expected: dict) -> GalleryIndex | None:
    """The index in `folder` when it was built for `expected`; None otherwise."""
    try:
        meta = json.loads((folder / META).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if {k: meta.get(k) for k in expected} != expected:
        return None
    return index_arrays(folder, meta)


def index_arrays(folder: Path, meta: dict) -> GalleryIndex | None:
    """The arrays of the index in `folder`, memory-mapped, when they are as `meta` (its index.json) says."""
    try:
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    except (FileNotFoundError, ValueError):
        return None
    if any(len(a) != meta.get("items") for a in arrays.values()) or arrays["embeddings"].shape[1:] != (
            meta.get("embedding_size"),):
        return None
    return GalleryIndex(**arrays)


def read_index(folder: Path, weights: Path, embedding_size: int) -> GalleryIndex:
    """The index in `folder` for queries by the model file `weights` (infer): an index that is missing,
    malformed, or built by another model or for embeddings of another size is an input error."""
    path = folder / META
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("no gallery index here (retrieve and predict-df2 write one)", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"not valid JSON ({error})", path) from None
    meta = meta if isinstance(meta, dict) else {}
    problems = [
        (meta.get("format") != INDEX_FORMAT, f"not a gallery index of format {INDEX_FORMAT}"),
        (meta.get("embedding_size") != embedding_size,
         f"embeddings of size {meta.get('embedding_size')}, the model's are {embedding_size}: another model built it"),
        (meta.get("model_sha256") != file_digest(weights).hexdigest(),
         f"built by another model file, not {weights}"),
    ]
    for bad, message in problems:
        if bad:
            raise InputError(message, path)
    index = index_arrays(folder, meta)
    if index is None:
        raise InputError(f"the arrays ({', '.join(f'{a}.npy' for a in ARRAYS)}) are missing or not as index.json "
                         "says", folder)
    return index


def top_matches(similarity, queries: np.ndarray, index: GalleryIndex, k: int) -> list[list[dict]]:
    """The `k` gallery items most similar to each query embedding, best first: image_id, item (the
    detection's number in its shop photo, from 1, best scored first, as the index lists them), box
    (original image pixels) and similarity (the match network's probability of the same product)."""
    if not len(index.embeddings):
        return [[] for _ in queries]
    ids, matches = index.image_ids, []
    for query, rows in zip(queries, rank_gallery(similarity, queries, index.embeddings, k)):
        gallery = torch.from_numpy(np.array(index.embeddings[rows], np.float32))
        with torch.no_grad():
            probabilities = similarity(torch.from_numpy(query[None]), gallery)[0].sigmoid().tolist()
        matches.append([{"image_id": int(ids[row]), "item": int((ids[:row] == ids[row]).sum()) + 1,
                         "box": index.boxes[row].tolist(), "similarity": probability}
                        for row, probability in zip(rows.tolist(), probabilities)])
    return matches


def build_index(folder: Path, model, reader, meta: dict, device, progress: bool = False) -> GalleryIndex:
    """Embed every detection scoring at least the threshold on the cache's shop photos; `index.json` last."""
    shops = [i for i in range(len(reader)) if reader.index["source"][i] == 1]
    return write_index(folder, predict_items(model, reader, shops, device, progress, "retrieve: gallery"), meta,
                       model.config.embedding_size)


def write_index(folder: Path, images, meta: dict, size: int) -> GalleryIndex:
    """The index of the shop photos among `images` (`deepfashion2.ImageItems`); `index.json` last."""
    items = detected_items(images, "shop", meta["gallery_threshold"])
    arrays = {
        "embeddings": np.array([image.embeddings[k] for image, k in items], np.float32).reshape(-1, size),
        "image_ids": np.array([image.image_id for image, _ in items], np.int64),
        "boxes": np.array([image.boxes[k] for image, k in items], np.float64).reshape(-1, 4),
        "scores": np.array([image.scores[k] for image, k in items], np.float64),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META).unlink(missing_ok=True)  # the old index is invalid from here on
    for name, array in arrays.items():
        with io.atomic_path(folder / f"{name}.npy", suffix=".npy") as tmp:
            np.save(tmp, array)
    shop_images = sum(image.source == "shop" for image in images)
    io.write_json(folder / META, {**meta, "items": len(items), "embedding_size": size, "shop_images": shop_images})
    return open_index(folder, meta)


def query_entries(model, reader, index: GalleryIndex, query_threshold: float, device,
                  progress: bool = False) -> list[dict]:
    """The official retrieval entries of the cache's consumer-photo detections against the index."""
    users = [i for i in range(len(reader)) if reader.index["source"][i] == 0]
    queries = detected_items(predict_items(model, reader, users, device, progress, "retrieve: queries"), "user",
                             query_threshold)
    if not queries or not len(index.embeddings):
        return []
    ranked = rank_gallery(model.similarity_logits, np.stack([image.embeddings[k] for image, k in queries]),
                          index.embeddings, RANKS)
    return retrieval_entries(queries, ranked, index.image_ids, index.boxes)


def open_retrieval_model(weights: Path, cache: Path, command: str):
    """(model, config, cache reader, device) of a command running a model file that embeds items for
    retrieval over a DeepFashion2 cache; a model of another family is an input error naming `command`."""
    model, config = load_model(weights)
    if not family(config.family).retrieval:
        raise InputError(f"{command} needs a model that embeds items for retrieval, not {config.family}", weights)
    return model, config, Df2CacheReader(cache), "cuda" if torch.cuda.is_available() else "cpu"


def retrieve(weights: Path, cache: Path, folder: Path, out: Path, query_threshold: float,
             gallery_threshold: float, progress: bool = False) -> str:
    model, _, reader, device = open_retrieval_model(weights, cache, "retrieve")
    start = time.perf_counter()
    meta = identity(weights, reader, gallery_threshold)
    index = open_index(folder, meta)
    built = index is None
    if built:
        index = build_index(folder, model, reader, meta, device, progress)
    entries = query_entries(model, reader, index, query_threshold, device, progress)
    io.write_json(out, entries)
    return (f"{len(index.embeddings)} gallery items ({'built' if built else 'reused'} index {folder}), "
            f"{len(entries)} query items ranked in {time.perf_counter() - start:.1f} s -> {out}")


def predict_split(weights: Path, cache: Path, out: Path, gallery_threshold: float, progress: bool = False) -> str:
    """The official bbox, segm and keypoints results of every image of the cache into `out`, and the
    gallery index of its shop photos' items (which `retrieve` reuses); a summary line."""
    model, config, reader, device = open_retrieval_model(weights, cache, "predict-df2")
    start = time.perf_counter()
    images = predict_items(model, reader, range(len(reader)), device, progress)
    results = detection_results(images)
    for task, entries in results.items():
        io.write_json(out / f"{task}.json", entries)
    index = write_index(out / layout.DF2_GALLERY_INDEX, images, identity(weights, reader, gallery_threshold),
                        config.embedding_size)
    return (f"{len(images)} images, {len(results['bbox'])} detections, {len(index.embeddings)} gallery items "
            f"in {time.perf_counter() - start:.1f} s -> {out}")

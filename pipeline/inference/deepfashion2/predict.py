"""Match R-CNN's detections of DeepFashion2 cache images, in the official submission formats.

`predict_items` runs the model on cache images and scales every detection back to the image's
original size (the annotations' frame); `detection_results` writes the bbox, segm and keypoints
entries `evaluate-df2` reads (`shared/DEEPFASHION2.md` section 6); `rank_gallery` and
`retrieval_results` turn the consumer photos' items and the shop photos' items into the official
retrieval entries, gallery ranked by the match network's similarity.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils

from pipeline.data.deepfashion2.annotations import RANKS
from pipeline.progress import progress as shown_progress


@dataclass
class ImageItems:
    """One image's detections at its original size."""

    image_id: int
    source: str  # user | shop
    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2
    scores: np.ndarray  # (N,)
    category_ids: np.ndarray  # (N,) 1..13
    masks: list[dict]  # N COCO RLEs at the original size
    landmarks: np.ndarray  # (N, 294, 3) x, y, heatmap score; zero outside the category's slots
    embeddings: np.ndarray  # (N, D) float32


def predict_items(model, reader, indices, device="cpu", progress: bool = False,
                  description: str = "predict-df2") -> list[ImageItems]:
    """The detections of reader images `indices`, one image per model call."""
    model.eval().to(device)
    items = []
    for index in shown_progress(indices, progress, len(indices), description):
        sample = reader[index]
        image = torch.from_numpy(np.ascontiguousarray(sample.image)).permute(2, 0, 1).float().div_(255)
        with torch.no_grad():
            (out,) = model([image.to(device)])
        items.append(to_original(sample, {k: v.cpu() for k, v in out.items()}))
    return items


def to_original(sample, out: dict) -> ImageItems:
    """Detections on a cache image (`out`) at the sample's original size."""
    height, width = sample.orig_size
    scale = np.array([width / sample.image.shape[1], height / sample.image.shape[0]])
    landmarks = out["landmarks"].numpy().copy()
    landmarks[..., :2] *= scale
    masks = []
    for probabilities in out["masks"][:, 0].numpy():
        mask = cv2.resize(probabilities, (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        masks.append({"size": [height, width], "counts": rle["counts"].decode()})
    return ImageItems(sample.image_id, sample.source, out["boxes"].numpy() * np.tile(scale, 2),
                      out["scores"].numpy(), out["labels"].numpy() + 1, masks, landmarks,
                      out["embeddings"].numpy().astype(np.float32))


def detection_results(images: list[ImageItems]) -> dict[str, list[dict]]:
    """{'bbox': [...], 'segm': [...], 'keypoints': [...]}: the official result entries of every detection."""
    results = {"bbox": [], "segm": [], "keypoints": []}
    for image in images:
        for k, (box, score, category) in enumerate(zip(image.boxes.tolist(), image.scores.tolist(),
                                                       image.category_ids.tolist())):
            head = {"image_id": image.image_id, "category_id": category, "score": score}
            x1, y1, x2, y2 = box
            results["bbox"].append({**head, "bbox": [x1, y1, x2 - x1, y2 - y1]})
            results["segm"].append({**head, "segmentation": image.masks[k]})
            points = image.landmarks[k].copy()
            points[:, 2] = 1  # v is not read by the evaluation; the official docs suggest 1
            results["keypoints"].append({**head, "keypoints": points.ravel().tolist()})
    return results


def rank_gallery(similarity, queries: np.ndarray, gallery: np.ndarray, ranks: int = RANKS,
                 block: int = 4096) -> np.ndarray:
    """(Q, min(ranks, G)) gallery rows by decreasing similarity; `similarity(q, g)` gives (q, g) logits.

    Computed `block` queries by `block` gallery rows at a time (the gallery may be a memory map),
    keeping each query's best `ranks` so far: memory stays at a few blocks whatever the sizes.
    """
    keep = min(ranks, len(gallery))
    ranked = np.zeros((len(queries), keep), np.int64)
    for first in range(0, len(queries), block):
        query_block = torch.from_numpy(np.array(queries[first : first + block], np.float32))
        best_scores = np.full((len(query_block), 0), -np.inf, np.float32)
        best_rows = np.zeros((len(query_block), 0), np.int64)
        for start in range(0, len(gallery), block):
            chunk = torch.from_numpy(np.array(gallery[start : start + block], np.float32))  # memory maps are read-only
            with torch.no_grad():
                scores = np.concatenate([best_scores, similarity(query_block, chunk).numpy()], axis=1)
            rows = np.concatenate([best_rows, np.broadcast_to(np.arange(start, start + len(chunk)),
                                                              (len(query_block), len(chunk)))], axis=1)
            if scores.shape[1] > keep:
                top = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
                scores, rows = np.take_along_axis(scores, top, 1), np.take_along_axis(rows, top, 1)
            best_scores, best_rows = scores, rows
        # Highest first; equal scores in gallery order.
        order = np.lexsort((best_rows, -best_scores), axis=1)
        ranked[first : first + len(query_block)] = np.take_along_axis(best_rows, order, 1)
    return ranked


def detected_items(images: list[ImageItems], source: str, threshold: float) -> list[tuple[ImageItems, int]]:
    """(image, detection) of every detection scoring at least `threshold` on the photos of `source`."""
    return [(image, k) for image in images if image.source == source for k in np.flatnonzero(image.scores >= threshold)]


def retrieval_entries(queries: list[tuple[ImageItems, int]], ranked: np.ndarray, gallery_image_ids: np.ndarray,
                      gallery_boxes: np.ndarray) -> list[dict]:
    """The official retrieval entries of query detections and their ranked gallery rows."""
    return [{"query_image_id": image.image_id, "query_bbox": image.boxes[k].tolist(),
             "query_cls": int(image.category_ids[k]), "query_score": float(image.scores[k]),
             "gallery_image_id": gallery_image_ids[rows].tolist(), "gallery_bbox": gallery_boxes[rows].tolist()}
            for (image, k), rows in zip(queries, ranked)]


def retrieval_results(images: list[ImageItems], similarity, query_threshold: float = 0.0,
                      gallery_threshold: float = 0.0) -> list[dict]:
    """One official retrieval entry per consumer-photo detection scoring at least `query_threshold`:
    the 20 most similar shop-photo detections scoring at least `gallery_threshold`."""
    queries = detected_items(images, "user", query_threshold)
    gallery = detected_items(images, "shop", gallery_threshold)
    if not queries or not gallery:
        return []
    ranked = rank_gallery(similarity, np.stack([image.embeddings[k] for image, k in queries]),
                          np.stack([image.embeddings[k] for image, k in gallery]))
    return retrieval_entries(queries, ranked, np.array([image.image_id for image, _ in gallery]),
                             np.stack([image.boxes[k] for image, k in gallery]))

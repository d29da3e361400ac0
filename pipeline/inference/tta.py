"""Test-time augmentation: one model run on flipped and rescaled views of an image, detections merged.

Every family resizes its input to a working size of its own (Mask R-CNN: min_size / max_size or
its letterbox; EfficientDet: a fixed square; FashionFormer: min_size / max_size), so resizing the
image before the call would change nothing the network sees. A view of scale s instead shows the
network the image's content s times as large as a plain call does:
- s <= 1: the image is centred on a black canvas 1/s times its size (black is what every family
  pads with, the framing of the training crops); masks and boxes are cropped back.
- s > 1: the model's working size is enlarged by s for the call (the model's own `enlarged_input`).
  A model without one (EfficientDet: its BiFPN's resampling is built for its one square) runs its
  views of scale above 1 at scale 1 (and they count once).
A flipped view flips the image; its masks and boxes are flipped back.

Merging (in the spirit of detectron2's mask TTA): the detections of all views are pooled, and,
highest score first, each joins the same-class cluster whose leader (its first, best member) it
overlaps most with binary mask IoU >= `merge_iou`, at most one member per view, else starts a
cluster. A cluster becomes one detection: mean soft mask, box and attribute probabilities of its
members, and score = sum of member scores / number of views, so an object found in one view of
four keeps a quarter of its score (agreement between views is the evidence TTA adds). With a
single view nothing is merged: scale 1 without flip is exactly the model's plain output.

Pooled soft masks are kept as uint8 (probability x 255) at the input image's size (the cache's,
at most `cache.max_size`), so views x detections masks stay small.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from pipeline.inference.config import TTAConfig

LEVELS = 255  # pooled soft masks: probability quantised to 1/255


def predict_with_tta(model, image: torch.Tensor, config: TTAConfig) -> dict[str, torch.Tensor]:
    """Detections of `image` (3, H, W in 0..1) as `model([image])[0]` returns them, over config's views."""
    enlargeable = hasattr(model, "enlarged_input")
    views = list(dict.fromkeys((scale if enlargeable else min(scale, 1.0), flip) for scale, flip in config.views()))
    if views == [(1.0, False)]:
        return model([image])[0]
    outputs = [view_output(model, image, scale, flip) for scale, flip in views]
    pooled = {key: torch.cat([o[key] for o in outputs]) for key in outputs[0]}
    pooled["view"] = torch.cat([torch.full((len(o["scores"]),), v) for v, o in enumerate(outputs)])
    limit = config.max_detections or model.config.detections_per_image
    return merge(pooled, len(views), config.merge_iou, limit)


def view_output(model, image: torch.Tensor, scale: float, flip: bool) -> dict[str, torch.Tensor]:
    """The model's detections on one view, mapped back onto `image`; masks as uint8 (N, H, W)."""
    height, width = image.shape[-2:]
    view = image.flip(-1) if flip else image
    enlargement = max(scale, 1.0)
    shrink = min(scale, 1.0)  # scales up to 1 are done by the canvas, larger ones by the working size
    top = left = 0
    if shrink < 1:
        canvas_height, canvas_width = round(height / shrink), round(width / shrink)
        top, left = (canvas_height - height) // 2, (canvas_width - width) // 2
        view = F.pad(view, (left, canvas_width - width - left, top, canvas_height - height - top))
    with enlarged_input(model, enlargement):
        output = model([view])[0]
    masks = output["masks"][:, 0, top : top + height, left : left + width]
    boxes = output["boxes"] - output["boxes"].new_tensor([left, top, left, top])
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    if flip:
        masks = masks.flip(-1)
        boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
    return {"masks": (masks.float() * LEVELS).round().to(torch.uint8), "boxes": boxes.float(),
            "labels": output["labels"], "scores": output["scores"].float(),
            "attributes": output["attributes"].float()}


@contextmanager
def enlarged_input(model, factor: float):
    """The model with its working size multiplied by `factor` for the duration, then restored: a
    family whose working size can grow defines `enlarged_input(factor)` on its model."""
    if factor == 1:
        yield
        return
    with model.enlarged_input(factor):
        yield


def mask_iou(masks: torch.Tensor) -> torch.Tensor:
    """(N, N) IoU of the binary masks (probability >= 0.5) of uint8 soft masks (N, H, W)."""
    binary = (masks >= (LEVELS + 1) // 2).flatten(1).float()
    intersection = binary @ binary.T
    area = binary.sum(1)
    union = area[:, None] + area[None, :] - intersection
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.zeros_like(union))


def greedy_clusters(iou: torch.Tensor, views: list[int], merge_iou: float) -> list[list[int]]:
    """Clusters (lists of positions) of detections sorted by score, IoU matrix `iou`, one member per view."""
    iou = iou.tolist()  # plain floats: this loop is Python
    clusters, taken = [], []  # per cluster: its positions (leader first), its views
    for j, view in enumerate(views):
        best, best_iou = None, merge_iou
        for c, cluster in enumerate(clusters):
            if view not in taken[c] and iou[cluster[0]][j] >= best_iou:
                best, best_iou = c, iou[cluster[0]][j]
        if best is None:
            clusters.append([j])
            taken.append({view})
        else:
            clusters[best].append(j)
            taken[best].add(view)
    return clusters


def merge(pooled: dict[str, torch.Tensor], num_views: int, merge_iou: float, limit: int) -> dict[str, torch.Tensor]:
    """Pooled detections of all views (with `view` indices) -> one detection per cluster (see module doc)."""
    clusters = []
    for label in pooled["labels"].unique().tolist():
        members = torch.nonzero(pooled["labels"] == label).flatten()
        members = members[pooled["scores"][members].argsort(descending=True, stable=True)]
        groups = greedy_clusters(mask_iou(pooled["masks"][members]), pooled["view"][members].tolist(), merge_iou)
        clusters += [[members[j].item() for j in group] for group in groups]
    scores = torch.stack([pooled["scores"][c].sum() / num_views for c in clusters]) if clusters else \
        pooled["scores"].new_zeros(0)
    keep = scores.argsort(descending=True, stable=True)[:limit].tolist()
    height, width = pooled["masks"].shape[-2:]
    if not keep:
        return {"boxes": pooled["boxes"].new_zeros((0, 4)), "labels": pooled["labels"][:0], "scores": scores,
                "masks": pooled["masks"].new_zeros((0, 1, height, width), dtype=torch.float32),
                "attributes": pooled["attributes"][:0]}
    chosen = [clusters[k] for k in keep]
    return {
        "boxes": torch.stack([pooled["boxes"][c].mean(0) for c in chosen]),
        "labels": torch.stack([pooled["labels"][c[0]] for c in chosen]),
        "scores": scores[keep],
        "masks": torch.stack([pooled["masks"][c].float().mean(0) / LEVELS for c in chosen])[:, None],
        "attributes": torch.stack([pooled["attributes"][c].mean(0) for c in chosen]),
    }

"""FashionFormer's training loss: every stage matched and supervised on its own (paper, 3.4).

Per stage: the class loss of all queries, focal (paper, eq. 9: unmatched queries learn 'no
object' as all zeros) or softmax cross-entropy with a 'no object' class weighted
`no_object_weight` (DETR, Mask2Former); focal (or binary cross-entropy, `mask_kind`) + dice on the
masks of matched queries, on every pixel or on `mask_points` points per mask sampled where the
prediction is uncertain (PointRend, Mask2Former 3.3); the attribute loss on matched queries whose
instance has attribute annotations. Each stage is matched on its own masks and classes (K-Net
matches on the previous stage's: slower to learn a few images by heart here); the initial masks M0
get the mask losses, matched on masks alone. Losses are summed over stages; the focal class loss
and the mask losses are divided by the number of instances, the softmax class loss is the weighted
mean over queries (as Mask2Former's).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from pipeline.models.fashionformer.decoder import StagePrediction
from pipeline.models.fashionformer.matcher import hungarian_match
from pipeline.models.losses import attribute_loss


@dataclass(frozen=True)
class LossWeights:
    classes: float = 1.0
    mask: float = 1.0  # the pixel loss on mask pixels
    dice: float = 1.0
    attributes: float = 1.0
    attribute_kind: str = "focal"  # see pipeline.models.losses
    alpha: float = 0.25
    gamma: float = 2.0
    mask_kind: str = "focal"  # the pixel loss: focal or bce (K-Net's and the official FashionFormer's)
    class_kind: str = "focal"  # focal (sigmoid per class) or softmax (classes + 'no object')
    no_object_weight: float = 0.1  # softmax only: the 'no object' class's weight in the cross-entropy
    mask_points: int = 0  # 0: the mask losses on every pixel; N: on N points per mask (uncertain ones)
    attribute_normalisation: str = "rows"  # rows | elements (pipeline.models.losses)


def dice_loss(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(K, P) logits against (K, P) targets in 0..1 -> (K,) dice losses, smoothed by 1."""
    p = mask_logits.sigmoid()
    return 1 - (2 * (p * targets).sum(1) + 1) / (p.sum(1) + targets.sum(1) + 1)


class FashionFormerLoss:
    """`loss(initial_masks, predictions, targets)` -> dict of scalar losses to sum.

    targets: per image `labels` (M,), `masks` (M, P) flattened at the prediction resolution with
    values in 0..1, `attributes` (M, A) and `has_attributes` (M,).
    """

    def __init__(self, weights: LossWeights):
        self.weights = weights

    def __call__(self, initial: StagePrediction, predictions: list[StagePrediction], targets: list[dict]):
        """`initial`: the masks M0 and, from query selection, their class logits (else None)."""
        w = self.weights
        instances = max(sum(len(t["labels"]) for t in targets), 1)
        totals = {"loss_classes": 0.0, "loss_mask": 0.0, "loss_dice": 0.0, "loss_attributes": 0.0}
        matches = self._match(initial.mask_logits.flatten(2), initial.class_logits, targets)
        for name, value in zip(("loss_mask", "loss_dice"), self._masks(initial.mask_logits, matches, targets)):
            totals[name] += value / instances
        if initial.class_logits is not None:
            totals["loss_classes"] += self._classes(initial.class_logits, matches, targets, instances)
        for stage in predictions:
            matches = self._match(stage.mask_logits.flatten(2), stage.class_logits, targets)
            for name, value in zip(("loss_mask", "loss_dice"), self._masks(stage.mask_logits, matches, targets)):
                totals[name] += value / instances
            totals["loss_classes"] += self._classes(stage.class_logits, matches, targets, instances)
            totals["loss_attributes"] += self._attributes(stage.attribute_logits, matches, targets)
        scale = {"loss_classes": w.classes, "loss_mask": w.mask, "loss_dice": w.dice, "loss_attributes": w.attributes}
        return {name: value * scale[name] for name, value in totals.items()}

    def _match(self, mask_logits, class_logits, targets):
        """(query indices, instance indices) per image; without class logits on the masks alone."""
        w = self.weights
        return [
            hungarian_match(mask_logits[b], target["masks"], None if class_logits is None else class_logits[b],
                            target["labels"], class_weight=w.classes, mask_weight=w.mask, dice_weight=w.dice,
                            alpha=w.alpha, gamma=w.gamma, mask_kind=w.mask_kind, class_kind=w.class_kind)
            for b, target in enumerate(targets)
        ]

    def _masks(self, mask_logits, matches, targets):
        """Summed pixel (focal or BCE, averaged over pixels or points) and dice losses of the matched
        masks; mask_logits (B, N, H, W), target masks (M, H * W)."""
        w = self.weights
        pixel, dice = mask_logits.sum() * 0, mask_logits.sum() * 0
        for b, ((rows, cols), target) in enumerate(zip(matches, targets)):
            predicted, truth = mask_logits[b, rows], target["masks"][cols].view(-1, *mask_logits.shape[-2:])
            if w.mask_points:
                predicted, truth = sample_points(predicted, truth, w.mask_points)
            predicted, truth = predicted.flatten(1), truth.flatten(1)
            if w.mask_kind == "bce":
                per_pixel = F.binary_cross_entropy_with_logits(predicted, truth, reduction="none")
            else:
                per_pixel = sigmoid_focal_loss(predicted, truth, w.alpha, w.gamma, reduction="none")
            pixel = pixel + per_pixel.mean(1).sum()
            dice = dice + dice_loss(predicted, truth).sum()
        return pixel, dice

    def _classes(self, class_logits, matches, targets, instances: int):
        w = self.weights
        if w.class_kind == "softmax":
            no_object = class_logits.shape[-1] - 1
            wanted = torch.full(class_logits.shape[:2], no_object, dtype=torch.int64, device=class_logits.device)
            for b, ((rows, cols), target) in enumerate(zip(matches, targets)):
                wanted[b, rows] = target["labels"][cols]
            weight = class_logits.new_ones(no_object + 1)
            weight[no_object] = w.no_object_weight
            return F.cross_entropy(class_logits.flatten(0, 1), wanted.flatten(), weight)
        wanted = torch.zeros_like(class_logits)
        for b, ((rows, cols), target) in enumerate(zip(matches, targets)):
            wanted[b, rows, target["labels"][cols]] = 1
        return sigmoid_focal_loss(class_logits, wanted, w.alpha, w.gamma, reduction="sum") / instances

    def _attributes(self, attribute_logits, matches, targets):
        logits, wanted = [], []
        for b, ((rows, cols), target) in enumerate(zip(matches, targets)):
            annotated = target["has_attributes"][cols]
            logits.append(attribute_logits[b, rows[annotated]])
            wanted.append(target["attributes"][cols[annotated]])
        return attribute_loss(torch.cat(logits), torch.cat(wanted), self.weights.attribute_kind,
                              self.weights.alpha, self.weights.gamma, self.weights.attribute_normalisation)


# PointRend's and Mask2Former's point selection: candidates oversampled uniformly, the most
# uncertain share kept (logits nearest 0), the rest uniform.
OVERSAMPLE, IMPORTANCE = 3, 0.75


def point_values(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(K, H, W) maps bilinearly read at (K, P, 2) points in 0..1 (x, y) -> (K, P)."""
    grid = 2 * points[:, :, None] - 1
    return F.grid_sample(maps[:, None], grid, align_corners=False)[:, 0, :, 0]


def sample_points(logits: torch.Tensor, targets: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, H, W) logits and targets read at `count` points per mask, most of them where the
    prediction is uncertain -> (K, count) each."""
    k = logits.shape[0]
    if k == 0:  # grid_sample refuses empty batches
        return logits.new_zeros((0, count)), logits.new_zeros((0, count))
    with torch.no_grad():
        candidates = torch.rand(k, OVERSAMPLE * count, 2, device=logits.device)
        uncertainty = -point_values(logits.detach(), candidates).abs()
        chosen = uncertainty.topk(int(IMPORTANCE * count), dim=1).indices
        points = torch.cat([candidates.gather(1, chosen[..., None].expand(-1, -1, 2)),
                            torch.rand(k, count - chosen.shape[1], 2, device=logits.device)], dim=1)
    return point_values(logits, points), point_values(targets.to(logits.dtype), points)

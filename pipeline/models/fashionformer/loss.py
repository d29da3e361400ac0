"""FashionFormer's training loss: every stage matched and supervised on its own (paper, 3.4).

Per stage: focal loss on the classes of all queries (unmatched ones learn 'no object' as all
zeros), focal (or binary cross-entropy, `mask_kind`) + dice on the masks of matched queries, the
attribute loss on matched queries whose instance has attribute annotations. Each stage is matched
on its own masks and classes (K-Net matches on the previous stage's: slower to learn a few images
by heart here); the initial masks M0 get the mask losses, matched on masks alone.
Losses are summed over stages, and class and mask losses are divided by the number of instances.
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

    def __call__(self, initial_masks: torch.Tensor, predictions: list[StagePrediction], targets: list[dict]):
        w = self.weights
        instances = max(sum(len(t["labels"]) for t in targets), 1)
        totals = {"loss_classes": 0.0, "loss_mask": 0.0, "loss_dice": 0.0, "loss_attributes": 0.0}
        initial_masks = initial_masks.flatten(2)
        matches = self._match(initial_masks, None, targets)
        for name, value in zip(("loss_mask", "loss_dice"), self._masks(initial_masks, matches, targets)):
            totals[name] += value / instances
        for stage in predictions:
            mask_logits = stage.mask_logits.flatten(2)
            matches = self._match(mask_logits, stage.class_logits, targets)
            for name, value in zip(("loss_mask", "loss_dice"), self._masks(mask_logits, matches, targets)):
                totals[name] += value / instances
            totals["loss_classes"] += self._classes(stage.class_logits, matches, targets) / instances
            totals["loss_attributes"] += self._attributes(stage.attribute_logits, matches, targets)
        scale = {"loss_classes": w.classes, "loss_mask": w.mask, "loss_dice": w.dice, "loss_attributes": w.attributes}
        return {name: value * scale[name] for name, value in totals.items()}

    def _match(self, mask_logits, class_logits, targets):
        """(query indices, instance indices) per image; without class logits on the masks alone."""
        w = self.weights
        return [
            hungarian_match(mask_logits[b], target["masks"], None if class_logits is None else class_logits[b],
                            target["labels"], class_weight=w.classes, mask_weight=w.mask, dice_weight=w.dice,
                            alpha=w.alpha, gamma=w.gamma, mask_kind=w.mask_kind)
            for b, target in enumerate(targets)
        ]

    def _masks(self, mask_logits, matches, targets):
        """Summed pixel (focal or BCE, averaged over pixels) and dice losses of the matched masks."""
        w = self.weights
        pixel, dice = mask_logits.sum() * 0, mask_logits.sum() * 0
        for b, ((rows, cols), target) in enumerate(zip(matches, targets)):
            predicted, truth = mask_logits[b, rows], target["masks"][cols]
            if w.mask_kind == "bce":
                per_pixel = F.binary_cross_entropy_with_logits(predicted, truth, reduction="none")
            else:
                per_pixel = sigmoid_focal_loss(predicted, truth, w.alpha, w.gamma, reduction="none")
            pixel = pixel + per_pixel.mean(1).sum()
            dice = dice + dice_loss(predicted, truth).sum()
        return pixel, dice

    def _classes(self, class_logits, matches, targets):
        wanted = torch.zeros_like(class_logits)
        for b, ((rows, cols), target) in enumerate(zip(matches, targets)):
            wanted[b, rows, target["labels"][cols]] = 1
        return sigmoid_focal_loss(class_logits, wanted, self.weights.alpha, self.weights.gamma, reduction="sum")

    def _attributes(self, attribute_logits, matches, targets):
        logits, wanted = [], []
        for b, ((rows, cols), target) in enumerate(zip(matches, targets)):
            annotated = target["has_attributes"][cols]
            logits.append(attribute_logits[b, rows[annotated]])
            wanted.append(target["attributes"][cols[annotated]])
        return attribute_loss(torch.cat(logits), torch.cat(wanted), self.weights.attribute_kind,
                              self.weights.alpha, self.weights.gamma, self.weights.attribute_normalisation)

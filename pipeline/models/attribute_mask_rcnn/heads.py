"""The attribute branch of Attribute-Mask R-CNN, grafted onto torchvision's `RoIHeads`.

The branch reads the box head's RoI representation (the TwoMLPHead output that the classifier
also reads) and predicts the attributes through a small MLP with sigmoid outputs.
Training: the RoIs the box head samples that are positive and matched to a ground-truth instance
with annotated attributes (`has_attributes`). Inference: the final detections' boxes.
Both run inside `RoIHeads.forward`, i.e. in the resized image frame, before boxes are scaled back.
The chosen RoIs are pooled and passed through the box head once more: the parent's forward does
not hand out its RoI features, and the positives are a small share of the sampled RoIs.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torchvision.models.detection.roi_heads import RoIHeads


class AttributeHead(nn.Module):
    """MLP: RoI representation -> one logit per attribute."""

    def __init__(self, in_features: int, hidden_size: int, num_attributes: int, prior: float = 0.01):
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden_size)
        self.logits = nn.Linear(hidden_size, num_attributes)
        # Start every attribute at probability `prior` (RetinaNet's trick): attributes are sparse,
        # and an even 0.5 start makes the loss of the ~290 negatives swamp the first steps.
        nn.init.constant_(self.logits.bias, -math.log((1 - prior) / prior))

    def forward(self, representation: torch.Tensor) -> torch.Tensor:
        return self.logits(torch.relu(self.hidden(representation)))


class GraftedRoIHeads(RoIHeads):
    """torchvision's box and mask heads, unchanged, with room for more heads on the same RoIs.

    The parent's forward keeps the RoIs it samples in training and their matches to itself; this
    class remembers them, so that a subclass's `extra_losses` can train its heads on them.
    Subclasses define `extra_losses` (training) and `extend_detections` (inference).
    """

    def __init__(self, heads: RoIHeads):
        """Take over the parts and settings of `heads` as `MaskRCNN` built them."""
        super().__init__(
            heads.box_roi_pool,
            heads.box_head,
            heads.box_predictor,
            heads.proposal_matcher.high_threshold,
            heads.proposal_matcher.low_threshold,
            heads.fg_bg_sampler.batch_size_per_image,
            heads.fg_bg_sampler.positive_fraction,
            heads.box_coder.weights,
            heads.score_thresh,
            heads.nms_thresh,
            heads.detections_per_img,
            heads.mask_roi_pool,
            heads.mask_head,
            heads.mask_predictor,
        )
        self._samples = None

    def select_training_samples(self, proposals, targets):
        samples = super().select_training_samples(proposals, targets)
        self._samples = samples
        return samples

    def forward(self, features, proposals, image_shapes, targets=None):
        result, losses = super().forward(features, proposals, image_shapes, targets)
        if self.training:
            samples, self._samples = self._samples, None
            losses.update(self.extra_losses(features, samples, image_shapes, targets))
        else:
            self.extend_detections(features, result, image_shapes)
        return result, losses

    def extra_losses(self, features, samples, image_shapes, targets) -> dict[str, torch.Tensor]:
        """The added heads' losses; `samples`: the parent's (RoIs, matched ground-truth indices, labels,
        regression targets) per image."""
        raise NotImplementedError

    def extend_detections(self, features, result, image_shapes) -> None:
        """Add the added heads' outputs to each image's detections in `result`."""
        raise NotImplementedError


class AttributeRoIHeads(GraftedRoIHeads):
    """torchvision's box and mask heads, unchanged, plus `AttributeHead` on the box representation."""

    def __init__(
        self,
        heads: RoIHeads,
        attribute_head: AttributeHead,
        attribute_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        attribute_loss_weight: float = 1.0,
    ):
        super().__init__(heads)
        self.attribute_head = attribute_head
        self.attribute_loss = attribute_loss
        self.attribute_loss_weight = attribute_loss_weight

    def extra_losses(self, features, samples, image_shapes, targets):
        sampled_proposals, matched_idxs, labels, _ = samples
        rois, attribute_targets = _annotated_positives(sampled_proposals, matched_idxs, labels, targets)
        logits = self._attribute_logits(features, rois, image_shapes)
        loss = self.attribute_loss(logits, torch.cat(attribute_targets))
        return {"loss_attributes": self.attribute_loss_weight * loss}

    def extend_detections(self, features, result, image_shapes):
        boxes = [r["boxes"] for r in result]
        probabilities = self._attribute_logits(features, boxes, image_shapes).sigmoid()
        for r, p in zip(result, probabilities.split([len(b) for b in boxes])):
            r["attributes"] = p

    def _attribute_logits(self, features, boxes, image_shapes) -> torch.Tensor:
        pooled = self.box_roi_pool(features, boxes, image_shapes)
        return self.attribute_head(self.box_head(pooled))


def _annotated_positives(proposals, matched_idxs, labels, targets):
    """Per image: the positive RoIs matched to ground truth with attributes, and those attributes."""
    rois, attribute_targets = [], []
    for boxes, matched, label, target in zip(proposals, matched_idxs, labels, targets):
        gt_index = matched[label > 0]
        annotated = target["has_attributes"].bool()[gt_index]
        rois.append(boxes[label > 0][annotated])
        attribute_targets.append(target["attributes"][gt_index[annotated]])
    return rois, attribute_targets

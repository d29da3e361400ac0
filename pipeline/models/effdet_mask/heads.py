"""The Mask R-CNN half of the hybrid: a stride-4 pyramid level and the RoI heads on it.

`TopDownLevel` makes P2 from the backbone's stride-4 feature and the BiFPN's P3 the way FPN's
top-down path makes a level (lateral 1x1 conv + upsampled coarser level, then a 3x3 conv): P3-P7
alone are too coarse for small garment parts. `MaskAttributeHeads` pools each RoI once over the
chosen levels (torchvision's MultiScaleRoIAlign picks a level per box size) and feeds both the
Mask R-CNN mask head (convs + deconv, a 28x28 mask per class) and the attribute MLP.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import maskrcnn_inference, maskrcnn_loss, paste_masks_in_image
from torchvision.ops import MultiScaleRoIAlign

from pipeline.models.attribute_mask_rcnn.heads import AttributeHead
from pipeline.models.effdet_mask.transform import Placement

ATTRIBUTE_POOL = 7  # the attribute MLP reads the RoI features averaged down to 7x7


class TopDownLevel(nn.Module):
    """P2 = conv3x3(lateral(C2) + upsample(P3))."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.lateral = nn.Conv2d(in_channels, channels, 1)
        self.smooth = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, stride_4: torch.Tensor, p3: torch.Tensor) -> torch.Tensor:
        top_down = F.interpolate(p3, size=stride_4.shape[-2:], mode="nearest")
        return self.smooth(self.lateral(stride_4) + top_down)


class MaskAttributeHeads(nn.Module):
    """RoI features of boxes (xyxy in the square) -> mask logits and attribute logits."""

    def __init__(self, levels: list[str], channels: int, roi_size: int, mask_channels: int, mask_layers: int,
                 num_classes: int, num_attributes: int, attribute_hidden_size: int, attribute_prior: float,
                 attribute_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 attribute_loss_weight: float = 1.0):
        super().__init__()
        self.pool = MultiScaleRoIAlign(levels, output_size=roi_size, sampling_ratio=2)
        self.mask_head = MaskRCNNHeads(channels, (mask_channels,) * mask_layers, dilation=1)
        self.mask_predictor = MaskRCNNPredictor(mask_channels, mask_channels, num_classes)
        self.attribute_head = AttributeHead(
            channels * ATTRIBUTE_POOL**2, attribute_hidden_size, num_attributes, attribute_prior
        )
        self.attribute_loss = attribute_loss
        self.attribute_loss_weight = attribute_loss_weight

    def forward(self, features: OrderedDict[str, torch.Tensor], boxes: list[torch.Tensor],
                image_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.pool(features, boxes, [image_size] * len(boxes))
        mask_logits = self.mask_predictor(self.mask_head(pooled))
        attribute_logits = self.attribute_head(F.adaptive_avg_pool2d(pooled, ATTRIBUTE_POOL).flatten(1))
        return mask_logits, attribute_logits

    def losses(self, features, rois: list[torch.Tensor], matched: list[torch.Tensor], targets: list[dict],
               placements: list[Placement], image_size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """Mask and attribute losses of RoIs matched to ground truth (`matched`: indices into it).

        Mask targets are cropped from the full-resolution ground-truth masks, so the RoIs are
        mapped back to input pixels for them instead of resizing every mask.
        """
        mask_logits, attribute_logits = self(features, rois, image_size)
        loss_mask = maskrcnn_loss(mask_logits, [p.to_input(r) for r, p in zip(rois, placements)],
                                  [t["masks"] for t in targets], [t["labels"] for t in targets], matched)
        annotated = torch.cat([t["has_attributes"].bool()[m] for t, m in zip(targets, matched)])
        attribute_targets = torch.cat([t["attributes"][m] for t, m in zip(targets, matched)])
        loss_attributes = self.attribute_loss(attribute_logits[annotated], attribute_targets[annotated])
        return {"loss_mask": loss_mask, "loss_attributes": self.attribute_loss_weight * loss_attributes}

    def predict(self, features, boxes: list[torch.Tensor], labels: list[torch.Tensor], placements: list[Placement],
                image_size: tuple[int, int]):
        """Per image: masks (N, 1, H, W) pasted at the input size and attribute probabilities."""
        mask_logits, attribute_logits = self(features, boxes, image_size)
        masks = maskrcnn_inference(mask_logits, labels)
        attributes = attribute_logits.sigmoid().split([len(b) for b in boxes])
        pasted = [paste_masks_in_image(m, p.to_input(b), p.input_size) for m, b, p in zip(masks, boxes, placements)]
        return pasted, attributes

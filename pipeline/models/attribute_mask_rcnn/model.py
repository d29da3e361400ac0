"""Attribute-Mask R-CNN: torchvision's Mask R-CNN on a timm FPN backbone, plus an attribute head.

Category ids are 0..num_classes-1 outside the model; torchvision's class 0 is background, so
ids are shifted by one on the way in and back on the way out.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from pipeline.models.attribute_mask_rcnn.heads import AttributeHead, AttributeRoIHeads
from pipeline.models.attribute_mask_rcnn.transform import SubpixelMaskTransform
from pipeline.models.backbones import TimmFPN, normalisation
from pipeline.models.config import ModelConfig
from pipeline.models.losses import attribute_loss

FEATURE_LEVELS = ["0", "1", "2", "3"]  # the FPN levels RoIs are pooled from (strides 4..32)


@dataclass(frozen=True)
class AttributeMaskRCNNConfig(ModelConfig):
    family: str = "attribute_mask_rcnn"
    fpn_channels: int = 256
    min_size: int = 800  # GeneralizedRCNNTransform: shorter side resized to min_size ...
    max_size: int = 1333  # ... unless the longer side would exceed max_size
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)  # one per pyramid level, '0'..'pool'
    anchor_aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width
    rpn_batch_size_per_image: int = 256
    rpn_proposals_train: int = 2000  # kept before and after the RPN's NMS, per image
    rpn_proposals_test: int = 1000
    roi_batch_size_per_image: int = 512
    roi_positive_fraction: float = 0.25
    box_representation_size: int = 1024  # TwoMLPHead width, also the attribute head's input
    mask_head_channels: int = 256
    mask_head_layers: int = 4
    mask_roi_size: int = 14  # RoIAlign output of the mask head; masks come out twice as large
    attribute_hidden_size: int = 1024
    attribute_prior: float = 0.01  # initial probability of every attribute
    nms_threshold: float = 0.5
    # > 0: every image is resized so its longest side is `letterbox` and centred on a black square
    # of that side, the layout of the training pipeline's crops (set it to their image_size);
    # 0: torchvision's min_size / max_size resizing.
    letterbox: int = 0


def mask_rcnn_arguments(config: AttributeMaskRCNNConfig) -> dict:
    """torchvision `MaskRCNN` keyword arguments, besides the backbone, from the fields Attribute-Mask R-CNN
    and Match R-CNN share: resizing, anchors, RPN, box and mask RoI pools, heads and predictors."""
    c = config
    mask_layers = (c.mask_head_channels,) * c.mask_head_layers
    return dict(
        min_size=c.min_size,
        max_size=c.max_size,
        rpn_anchor_generator=AnchorGenerator(
            tuple((size,) for size in c.anchor_sizes), (c.anchor_aspect_ratios,) * len(c.anchor_sizes)
        ),
        rpn_pre_nms_top_n_train=c.rpn_proposals_train,
        rpn_post_nms_top_n_train=c.rpn_proposals_train,
        rpn_pre_nms_top_n_test=c.rpn_proposals_test,
        rpn_post_nms_top_n_test=c.rpn_proposals_test,
        rpn_batch_size_per_image=c.rpn_batch_size_per_image,
        box_roi_pool=MultiScaleRoIAlign(FEATURE_LEVELS, output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(c.fpn_channels * 7 * 7, c.box_representation_size),
        box_predictor=FastRCNNPredictor(c.box_representation_size, c.num_classes + 1),
        box_score_thresh=c.score_threshold,
        box_nms_thresh=c.nms_threshold,
        box_detections_per_img=c.detections_per_image,
        box_batch_size_per_image=c.roi_batch_size_per_image,
        box_positive_fraction=c.roi_positive_fraction,
        mask_roi_pool=MultiScaleRoIAlign(FEATURE_LEVELS, output_size=c.mask_roi_size, sampling_ratio=2),
        mask_head=MaskRCNNHeads(c.fpn_channels, mask_layers, dilation=1),
        mask_predictor=MaskRCNNPredictor(mask_layers[-1], mask_layers[-1], c.num_classes + 1),
    )


class AttributeMaskRCNN(MaskRCNN):
    """`model(images, targets)` -> losses in training; `model(images)` -> detections in eval.

    images: float (3, H, W) tensors in 0..1 (normalised inside). targets: dicts of boxes (M, 4)
    xyxy, labels (M,) 0..num_classes-1, masks (M, H, W) uint8, attributes (M, num_attributes)
    0/1, has_attributes (M,) bool. Detections: boxes, labels, scores, masks (N, 1, H, W)
    probabilities and attributes (N, num_attributes) probabilities, in input image pixels.
    """

    def __init__(self, config: AttributeMaskRCNNConfig):
        c = config
        super().__init__(TimmFPN(c.backbone, c.fpn_channels, c.backbone_norm_frozen), **mask_rcnn_arguments(c))
        # torchvision's resizing with the backbone's own normalisation; ground-truth masks resized and
        # predictions pasted without shifts.
        self.transform = SubpixelMaskTransform(c.min_size, c.max_size, *normalisation(c.backbone), c.letterbox)
        self.roi_heads = AttributeRoIHeads(
            self.roi_heads,
            AttributeHead(c.box_representation_size, c.attribute_hidden_size, c.num_attributes, c.attribute_prior),
            partial(attribute_loss, kind=c.attribute_loss, alpha=c.focal_alpha, gamma=c.focal_gamma,
                    normalisation=c.attribute_normalisation),
            c.attribute_loss_weight,
        )
        self.config = config

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None):
        if targets is not None:
            targets = [{**t, "labels": t["labels"] + 1} for t in targets]
        output = super().forward(images, targets)
        if self.training:
            return output
        return [{**d, "labels": d["labels"] - 1} for d in output]

    @contextmanager
    def enlarged_input(self, factor: float):
        """Test-time augmentation's larger views: the resize's working size times `factor` for the duration."""
        transform = self.transform
        saved = transform.min_size, transform.max_size, transform.letterbox
        transform.min_size = tuple(size * factor for size in saved[0])
        transform.max_size = saved[1] * factor
        transform.letterbox = round(saved[2] * factor)
        try:
            yield
        finally:
            transform.min_size, transform.max_size, transform.letterbox = saved

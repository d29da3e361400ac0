"""EfficientDet-mask: EfficientDet's detector with a Mask R-CNN mask head and an attribute head.

After "Fine-Grained Segmentation Task for Fashion Using Fused EfficientDet and Mask R-CNN": the
backbone, BiFPN, class and box nets, anchors, anchor labeler, focal and box losses are effdet's
(`effdet.EfficientDet` and friends, never downloaded: `pretrained_backbone=False`). Its top
detections are the RoIs of a Mask R-CNN mask head and an attribute head, pooled over BiFPN levels
plus a stride-4 level P2 (see heads.py). Training: effdet's losses on the anchors, and the mask
and attribute losses on the ground-truth boxes plus the detections matched to them.

Category ids are 0..num_classes-1 outside the model. effdet's labeler takes them from 1 (its
background is -1 after it subtracts 1), so they go in shifted by one; its class channel c is id c.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial

import timm
import torch
from effdet import EfficientDet, get_efficientdet_config
from effdet.anchors import AnchorLabeler, Anchors
from effdet.config.model_config import efficientdet_model_param_dict
from effdet.loss import DetectionLoss
from timm.layers import freeze_batch_norm_2d
from torch import nn

from pipeline.models.backbones import normalisation
from pipeline.models.config import ModelConfig
from pipeline.models.effdet_mask.detection import decode, matched_rois
from pipeline.models.effdet_mask.heads import MaskAttributeHeads, TopDownLevel
from pipeline.models.effdet_mask.transform import Letterbox, xyxy_to_yxyx
from pipeline.models.losses import attribute_loss

BACKBONE_STAGES = (1, 2, 3, 4)  # timm stage indices at strides 4, 8, 16, 32; effdet itself takes 2-4
ANCHOR_MATCH_IOU = 0.5  # as effdet's DetBenchTrain labels anchors


@dataclass(frozen=True)
class EffDetMaskConfig(ModelConfig):
    family: str = "effdet_mask"
    effdet_name: str = "efficientdet_d0"  # effdet's compound scaling: backbone, BiFPN width/depth, resolution
    backbone: str | None = None  # timm backbone; None: the one effdet_name defines (efficientnet_b0 for d0)
    image_size: int | None = None  # square input side, a multiple of 128; None: effdet_name's (512 for d0)
    head_bn_momentum: float = 0.01  # BiFPN and class/box nets' batch norms (effdet's TF-derived 0.01)
    anchor_scale: float = 4.0  # anchor side / level stride (effdet's 4: 32 px anchors at P3)
    mask_levels: tuple[int, ...] = (2, 3, 4, 5)  # pyramid levels RoIs are pooled from (P2 = stride 4)
    mask_roi_size: int = 14  # RoIAlign output; masks come out twice as large
    mask_head_channels: int | None = None  # None: the BiFPN width
    mask_head_layers: int = 4
    attribute_hidden_size: int = 256
    attribute_prior: float = 0.01  # initial probability of every attribute
    roi_match_iou: float = 0.5  # detections overlapping ground truth this much also train the RoI heads
    train_detections: int = 64  # top detections per image considered for that during training
    nms_threshold: float = 0.5  # class-wise NMS IoU

    def __post_init__(self):
        super().__post_init__()
        if self.effdet_name not in efficientdet_model_param_dict:
            raise ValueError(f"effdet_name {self.effdet_name!r} is not an effdet model config")
        max_level = get_efficientdet_config(self.effdet_name).max_level
        if self.image_size is not None and self.image_size % 2**max_level:
            raise ValueError(f"image_size must be a multiple of {2 ** max_level}, not {self.image_size}")
        if not self.mask_levels or list(self.mask_levels) != sorted(set(self.mask_levels)) or not (
            2 <= self.mask_levels[0] and self.mask_levels[-1] <= max_level
        ):
            raise ValueError(f"mask_levels must be increasing levels from 2 to {max_level}, not {self.mask_levels}")

    @property
    def crop_side(self) -> int:
        """EfficientDet's fixed input square."""
        return effdet_config(self).image_size[0]


def effdet_config(config: EffDetMaskConfig):
    """effdet's config of `config.effdet_name`, with the project's classes and overrides."""
    h = get_efficientdet_config(config.effdet_name)
    h.num_classes = config.num_classes
    if config.backbone is not None:
        h.backbone_name = config.backbone
    if config.image_size is not None:
        h.image_size = (config.image_size, config.image_size)
    h.norm_kwargs.momentum = config.head_bn_momentum
    h.anchor_scale = config.anchor_scale
    return h


class EffDetMask(nn.Module):
    """`model(images, targets)` -> losses in training; `model(images)` -> detections in eval.

    The interface of every family (see attribute_mask_rcnn.model.AttributeMaskRCNN): images are
    (3, H, W) float tensors in 0..1 of any sizes; detections are in input image pixels.
    """

    def __init__(self, config: EffDetMaskConfig):
        super().__init__()
        c = config
        h = effdet_config(c)
        self.detector = EfficientDet(h, pretrained_backbone=False)
        # The same network as effdet's backbone (same parameter names), also returning stride 4 for P2.
        body = timm.create_model(h.backbone_name, features_only=True, out_indices=BACKBONE_STAGES, pretrained=False,
                                 **(h.backbone_args or {}))
        if c.backbone_norm_frozen:
            body = freeze_batch_norm_2d(body)
        self.detector.backbone = body
        self.letterbox = Letterbox(h.image_size[0], *normalisation(h.backbone_name))
        self.anchors = Anchors.from_config(h)
        self.labeler = AnchorLabeler(self.anchors, h.num_classes, match_threshold=ANCHOR_MATCH_IOU)
        self.detection_loss = DetectionLoss(h)
        self.candidates = h.max_detection_points
        self.levels = list(c.mask_levels)
        self.p2 = TopDownLevel(body.feature_info.channels()[0], h.fpn_channels) if 2 in self.levels else None
        self.roi_heads = MaskAttributeHeads(
            [str(level) for level in self.levels], h.fpn_channels, c.mask_roi_size,
            c.mask_head_channels or h.fpn_channels, c.mask_head_layers, c.num_classes,
            c.num_attributes, c.attribute_hidden_size, c.attribute_prior,
            partial(attribute_loss, kind=c.attribute_loss, alpha=c.focal_alpha, gamma=c.focal_gamma,
                    normalisation=c.attribute_normalisation),
            c.attribute_loss_weight,
        )
        self.config = config

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None):
        batch, placements = self.letterbox(images)
        stride_4, *strides_8_to_32 = self.detector.backbone(batch)
        pyramid = self.detector.fpn(strides_8_to_32)  # P3..P7
        class_out, box_out = self.detector.class_net(pyramid), self.detector.box_net(pyramid)
        features = OrderedDict(
            (str(level), self.p2(stride_4, pyramid[0]) if level == 2 else pyramid[level - 3]) for level in self.levels
        )
        square = tuple(batch.shape[-2:])
        if self.training:
            return self._losses(class_out, box_out, features, targets, placements, square)
        c = self.config
        detections = decode(class_out, box_out, self.anchors.boxes, c.num_classes, self.candidates, placements,
                            c.score_threshold, c.nms_threshold, c.detections_per_image)
        boxes, labels = [d["boxes"] for d in detections], [d["labels"] for d in detections]
        masks, attributes = self.roi_heads.predict(features, boxes, labels, placements, square)
        return [
            {"boxes": p.to_input(d["boxes"]), "labels": d["labels"], "scores": d["scores"], "masks": m, "attributes": a}
            for d, p, m, a in zip(detections, placements, masks, attributes)
        ]

    def anchor_targets(self, boxes: list[torch.Tensor], labels: list[torch.Tensor]):
        """effdet's per-level class and box targets of xyxy boxes (in the square) and 0-based ids.

        The labeler wants yxyx boxes and ids from 1; its class targets come out 0-based (the
        class channel), -1 for background and -2 for ignored anchors.
        """
        return self.labeler.batch_label_anchors([xyxy_to_yxyx(b) for b in boxes], [ids + 1 for ids in labels])

    def _losses(self, class_out, box_out, features, targets, placements, square) -> dict[str, torch.Tensor]:
        c = self.config
        gt_boxes = [p.to_square(t["boxes"]) for t, p in zip(targets, placements)]
        class_targets, box_targets, positives = self.anchor_targets(gt_boxes, [t["labels"] for t in targets])
        _, loss_class, loss_box = self.detection_loss(class_out, box_out, class_targets, box_targets, positives)
        with torch.no_grad():
            detections = decode([o.detach() for o in class_out], [o.detach() for o in box_out], self.anchors.boxes,
                                c.num_classes, self.candidates, placements, 0.0, c.nms_threshold, c.train_detections)
        rois, matched = zip(*(matched_rois(d["boxes"], b, c.roi_match_iou) for d, b in zip(detections, gt_boxes)))
        return {
            "loss_class": loss_class,
            "loss_box": self.detection_loss.box_loss_weight * loss_box,
            **self.roi_heads.losses(features, list(rois), list(matched), targets, placements, square),
        }

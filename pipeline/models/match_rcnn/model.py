"""Match R-CNN (Ge et al., DeepFashion2): FN, PN and MN on the project's Mask R-CNN.

FN: a timm backbone under an FPN, the RPN and RoIAlign. PN: torchvision's box head (two hidden fc,
class fc, box fc), its mask head (4 convs, deconv, conv) and the landmark stream; MN: the match
network (`heads.py`). The loss is the weighted sum of the classification, box, landmark, mask and
pair losses (config weights; the RPN's own losses are added as they are).

Category ids are 0..12 outside the model (DeepFashion2's category_id - 1), as every family's;
inside, torchvision's label is the category_id itself (0 is background).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads
from torchvision.ops import MultiScaleRoIAlign

from pipeline.data.deepfashion2.annotations import CATEGORIES
from pipeline.models.attribute_mask_rcnn.model import FEATURE_LEVELS, mask_rcnn_arguments
from pipeline.models.attribute_mask_rcnn.transform import SubpixelMaskTransform, letterbox_placement
from pipeline.models.backbones import TimmFPN, normalisation
from pipeline.models.config import ModelConfig
from pipeline.models.match_rcnn.heads import (
    MATCH_NETWORKS, LandmarkPredictor, MatchHead, MatchRoIHeads, spread_landmarks,
)


@dataclass(frozen=True)
class MatchRCNNConfig(ModelConfig):
    family: str = "match_rcnn"
    num_classes: int = len(CATEGORIES)
    fpn_channels: int = 256
    min_size: int = 800  # GeneralizedRCNNTransform: shorter side resized to min_size ...
    max_size: int = 1333  # ... unless the longer side would exceed max_size
    letterbox: int = 0  # > 0: images resized and centred on a square canvas of this side (see transform.py)
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    anchor_aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_batch_size_per_image: int = 256
    rpn_proposals_train: int = 2000
    rpn_proposals_test: int = 1000
    roi_batch_size_per_image: int = 512
    roi_positive_fraction: float = 0.25
    box_representation_size: int = 1024
    mask_head_channels: int = 256
    mask_head_layers: int = 4
    mask_roi_size: int = 14  # masks come out twice as large
    landmark_head_channels: int = 512
    landmark_head_layers: int = 8
    landmark_roi_size: int = 14  # heatmaps come out four times as large
    landmark_deconvolutions: int = 2  # the notes' 2; 1: torchvision's deconvolution + 2x bilinear upsampling
    match_head_channels: int = 256
    match_head_layers: int = 4
    match_roi_size: int = 14
    match_network: str = "published"  # published | residual (heads.py)
    pair_negatives_per_positive: int = 3  # negatives sampled per positive pair of a batch
    nms_threshold: float = 0.5
    # The paper's lambda_1..5 (its values are unpublished: 1 each here).
    classifier_loss_weight: float = 1.0
    box_loss_weight: float = 1.0
    landmark_loss_weight: float = 1.0
    mask_loss_weight: float = 1.0
    pair_loss_weight: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        problems = [
            (self.num_classes != len(CATEGORIES), f"num_classes must be {len(CATEGORIES)} (DeepFashion2's categories "
                                                  f"own the 294 landmark slots), not {self.num_classes}"),
            (self.pair_negatives_per_positive < 1,
             f"pair_negatives_per_positive must be at least 1, not {self.pair_negatives_per_positive}"),
            (self.landmark_deconvolutions not in (1, 2),
             f"landmark_deconvolutions must be 1 or 2, not {self.landmark_deconvolutions}"),
            (self.match_network not in MATCH_NETWORKS,
             f"match_network must be one of {MATCH_NETWORKS}, not {self.match_network!r}"),
        ]
        for bad, message in problems:
            if bad:
                raise ValueError(message)

    @property
    def embedding_size(self) -> int:
        """The match network's fc maps back to the RoI features' width (MatchHead)."""
        return self.fpn_channels

    @property
    def loss_weights(self) -> dict[str, float]:
        return {"loss_classifier": self.classifier_loss_weight, "loss_box_reg": self.box_loss_weight,
                "loss_landmarks": self.landmark_loss_weight, "loss_mask": self.mask_loss_weight,
                "loss_pair": self.pair_loss_weight}


class LandmarkTransform(SubpixelMaskTransform):
    """The project's Mask R-CNN transform, also moving landmarks (x, y of `landmarks`) with the image."""

    def resize(self, image, target=None):
        if target is None or "landmarks" not in target:
            return super().resize(image, target)
        original = image.shape[-2:]
        landmarks = target["landmarks"]
        image, target = super().resize(image, {k: v for k, v in target.items() if k != "landmarks"})
        scale, shift = placement(original, image.shape[-2:], self.letterbox)
        target["landmarks"] = torch.cat([landmarks[..., :2] * scale.to(landmarks) + shift.to(landmarks),
                                         landmarks[..., 2:]], dim=-1)
        return image, target

    def postprocess(self, result, image_shapes, original_image_sizes):
        if not self.training:
            for pred, resized, original in zip(result, image_shapes, original_image_sizes):
                scale, shift = placement(original, resized, self.letterbox)
                points = pred["landmarks"]
                # Clipped as the boxes are: on a letterbox canvas, heatmaps can reach into the padding.
                xy = ((points[..., :2] - shift.to(points)) / scale.to(points)).clamp(min=0)
                xy = torch.minimum(xy, torch.tensor([original[1], original[0]]).to(points))
                pred["landmarks"] = torch.cat([xy, points[..., 2:]], dim=-1)
        return super().postprocess(result, image_shapes, original_image_sizes)


def placement(original, resized, letterbox: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) scale and shift taking original image pixels to the network's input frame."""
    if letterbox:
        (height, width), (top, left) = letterbox_placement(tuple(original), letterbox)
        shift = torch.tensor([left, top], dtype=torch.float32)
    else:
        (height, width), shift = resized, torch.zeros(2)
    return torch.tensor([width / original[1], height / original[0]], dtype=torch.float32), shift


class MatchRCNN(MaskRCNN):
    """`model(images, targets)` -> weighted losses in training; `model(images)` -> detections in eval.

    images: float (3, H, W) tensors in 0..1 (normalised inside). targets: dicts of boxes (M, 4)
    xyxy, labels (M,) 0..12, masks (M, H, W) uint8, landmarks (M, 294, 3) x, y, v in DeepFashion2's
    slot layout (only the item's category's slots are read), and per item styles (M,) int64
    (0: in no pair), pair_ids (M,) int64 (its image's pair_id) and shop (M,) bool (a shop photo).
    Detections, in input image pixels: boxes, labels, scores, masks (N, 1, H, W) probabilities,
    landmarks (N, 294, 3) x, y and the heatmap score, zero outside the category's slots, and
    embeddings (N, embedding_size), compared by `similarity_logits`.
    """

    def __init__(self, config: MatchRCNNConfig):
        c = config
        super().__init__(TimmFPN(c.backbone, c.fpn_channels, c.backbone_norm_frozen), **mask_rcnn_arguments(c))
        self.transform = LandmarkTransform(c.min_size, c.max_size, *normalisation(c.backbone), c.letterbox)
        landmark_layers = (c.landmark_head_channels,) * c.landmark_head_layers
        self.roi_heads = MatchRoIHeads(
            self.roi_heads,
            MultiScaleRoIAlign(FEATURE_LEVELS, output_size=c.landmark_roi_size, sampling_ratio=2),
            KeypointRCNNHeads(c.fpn_channels, landmark_layers),
            LandmarkPredictor(landmark_layers[-1], c.landmark_deconvolutions),
            MultiScaleRoIAlign(FEATURE_LEVELS, output_size=c.match_roi_size, sampling_ratio=2),
            MatchHead(c.fpn_channels, c.match_head_channels, c.match_head_layers, c.match_network),
            c.pair_negatives_per_positive,
        )
        self.config = config

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None):
        if targets is not None:
            targets = [{**t, "labels": t["labels"] + 1} for t in targets]
        output = super().forward(images, targets)
        if self.training:
            weights = self.config.loss_weights
            return {name: weights.get(name, 1.0) * loss for name, loss in output.items()}
        return [{**d, "labels": d["labels"] - 1, "landmarks": spread_landmarks(d["landmarks"], d["labels"])}
                for d in output]

    def similarity_logits(self, queries: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
        """(Q, G) logits of the probability that query item q and gallery item g are the same product."""
        return self.roi_heads.match_head.logit_matrix(queries, gallery)

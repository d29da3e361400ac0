"""FashionFormer (Xu et al., ECCV 2022): query-based instance segmentation with attributes.

The model reads like section 3 of the paper: `encoder` (backbone + FPN -> X_fuse and X1..X4),
`decoder` (initial kernels, then stages of a segmentation and an attribute stream), `loss`
(Hungarian matching and per-stage supervision). No anchors, no RoIs, no NMS: every query is one
candidate instance.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.backbones import normalisation
from pipeline.models.config import ModelConfig
from pipeline.models.fashionformer.decoder import DECODERS, Decoder, StagePrediction
from pipeline.models.fashionformer.encoder import FUSES, PixelEncoder
from pipeline.models.fashionformer.loss import FashionFormerLoss, LossWeights
from pipeline.models.fashionformer.matcher import PIXEL_TERMS

SIZE_DIVISOR = 32  # the canvas side is a multiple of the coarsest pyramid stride
CLASS_LOSSES = ("focal", "softmax")


@dataclass(frozen=True)
class FashionFormerConfig(ModelConfig):
    family: str = "fashionformer"
    min_size: int = 800  # images are resized so that the shorter side is min_size ...
    max_size: int = 1333  # ... unless the longer side would exceed max_size (as Mask R-CNN does)
    fpn_channels: int = 256
    hidden_dim: int = 256  # d: width of X_fuse and of the queries
    position_embedding: bool = True  # sine embedding of absolute positions added to X_fuse
    fuse: str = "sum"  # X_fuse from the FPN levels: summed (paper, 3.1) | semantic_fpn (the official code's)
    mask_stride: int = 4  # of X_fuse and the masks: 4 as in the paper, or 2 (small parts, small images)
    num_queries: int = 100
    query_selection: bool = False  # initial queries from the best-scored X_fuse pixels (Mask DINO), not learnt
    num_stages: int = 3
    num_heads: int = 8
    ffn_dim: int = 2048
    decoder: str = "fashionformer"  # or multi_layer_attention (the layered-attention paper's)
    mlr: bool = True  # multi-layer rendering of the attribute features; off: X_fuse only
    mlr_levels: int = 4  # pyramid levels X1..X<mlr_levels> the masks are rendered on
    mlr_modulation: bool = False  # rendered features also multiplied by the query (layered-attention paper, eq. 2)
    shared_attribute_query: bool = False  # the attribute stream starts from the object query itself
    xavier_init: bool = False  # the stages' weight matrices Xavier-uniform (paper 4.1; the official code's
                               # KernelUpdateHead.init_weights); false: PyTorch's default initialisation
    class_loss_weight: float = 1.0
    mask_loss_weight: float = 1.0  # the pixel loss on mask pixels
    mask_loss: str = "focal"  # the pixel loss: focal | bce (sigmoid cross-entropy, the official configuration's)
    dice_loss_weight: float = 1.0
    mask_points: int = 0  # 0: mask losses on every pixel; N: on N points per mask, mostly uncertain ones
    class_loss: str = "focal"  # focal (sigmoid per class, the paper's) | softmax (classes + 'no object')
    no_object_weight: float = 0.1  # softmax class loss: the 'no object' class's weight (DETR, Mask2Former)
    class_prior: float = 0.01  # initial probability of every class (focal class loss)
    attribute_prior: float = 0.01  # initial probability of every attribute

    def __post_init__(self):
        super().__post_init__()
        problems = [
            (self.decoder not in DECODERS, f"decoder must be one of {DECODERS}, not {self.decoder!r}"),
            (not 1 <= self.mlr_levels <= 4, "mlr_levels must be 1..4"),
            (self.mlr_modulation and not self.mlr, "mlr_modulation needs mlr"),
            (self.mask_loss not in PIXEL_TERMS,
             f"mask_loss must be one of {tuple(PIXEL_TERMS)}, not {self.mask_loss!r}"),
            (self.class_loss not in CLASS_LOSSES, f"class_loss must be one of {CLASS_LOSSES}, not {self.class_loss!r}"),
            (self.mask_points < 0, "mask_points must be >= 0"),
            (self.fuse not in FUSES, f"fuse must be one of {FUSES}, not {self.fuse!r}"),
            (self.num_stages < 1, "num_stages must be >= 1"),
            (self.num_queries < 1, "num_queries must be >= 1"),
            (self.mask_stride not in (2, 4), "mask_stride must be 2 or 4"),
            (self.hidden_dim % self.num_heads != 0, "hidden_dim must be a multiple of num_heads"),
            (not self.mlr and self.fpn_channels != self.hidden_dim,
             "without MLR fpn_channels must equal hidden_dim (the attribute stream groups X_fuse)"),
        ]
        for bad, message in problems:
            if bad:
                raise ValueError(message)


class FashionFormer(nn.Module):
    """`model(images, targets)` -> losses in training; `model(images)` -> detections in eval.

    Same interface as `AttributeMaskRCNN`: images are (3, H, W) tensors in 0..1 of any sizes;
    detections are per image `boxes` (K, 4) xyxy, `labels`, `scores`, `masks` (K, 1, H, W)
    probabilities and `attributes` (K, num_attributes) probabilities, at the input size.

    Each image is resized (min_size / max_size) and centred on a square canvas, black around it,
    then normalised. That is the layout of the training crops (the longest side scaled to the
    crop, centred by PadIfNeeded): a model that learnt where things are, as one trained on a few
    images does, finds them in the same place at inference.
    """

    def __init__(self, config: FashionFormerConfig):
        super().__init__()
        c = self.config = config
        self.encoder = PixelEncoder(c.backbone, c.fpn_channels, c.hidden_dim, c.position_embedding, c.mask_stride,
                                    c.backbone_norm_frozen, c.fuse)
        softmax = c.class_loss == "softmax"
        self.decoder = Decoder(
            num_queries=c.num_queries, dim=c.hidden_dim, fpn_channels=c.fpn_channels, heads=c.num_heads,
            ffn_dim=c.ffn_dim, num_stages=c.num_stages, num_classes=c.num_classes + softmax,
            num_attributes=c.num_attributes, variant=c.decoder, mlr=c.mlr, mlr_levels=c.mlr_levels,
            mlr_modulation=c.mlr_modulation, shared_attribute_query=c.shared_attribute_query,
            query_selection=c.query_selection, foreground=c.num_classes,
            class_prior=None if softmax else c.class_prior, attribute_prior=c.attribute_prior,
        )
        self.loss = FashionFormerLoss(LossWeights(
            c.class_loss_weight, c.mask_loss_weight, c.dice_loss_weight, c.attribute_loss_weight,
            c.attribute_loss, c.focal_alpha, c.focal_gamma, c.mask_loss, c.class_loss, c.no_object_weight,
            c.mask_points, c.attribute_normalisation,
        ))
        mean, std = normalisation(c.backbone)
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1), persistent=False)
        if c.xavier_init:
            self.decoder.xavier_()

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None):
        if self.training and targets is None:
            raise ValueError("targets are needed in training mode")
        c = self.config
        sizes = [self.working_size(image.shape[-2:]) for image in images]
        side = -(-max(max(size) for size in sizes) // SIZE_DIVISOR) * SIZE_DIVISOR
        # Black around the image before normalising, as in the training crops.
        batch = torch.stack([centre(resize(image, size), side) for image, size in zip(images, sizes)])
        fused, pyramid = self.encoder((batch - self.mean) / self.std)
        initial, predictions = self.decoder(fused, pyramid)
        if self.training:
            return self.loss(initial, predictions,
                             [target_at_mask_stride(t, size, side, c.mask_stride) for t, size in zip(targets, sizes)])
        return [self.detections(predictions[-1], b, size, side, image.shape[-2:])
                for b, (image, size) in enumerate(zip(images, sizes))]

    @contextmanager
    def enlarged_input(self, factor: float):
        """Test-time augmentation's larger views: min_size and max_size times `factor` for the duration."""
        saved = self.config
        self.config = replace(saved, min_size=round(saved.min_size * factor), max_size=round(saved.max_size * factor))
        try:
            yield
        finally:
            self.config = saved

    def working_size(self, size: torch.Size) -> tuple[int, int]:
        """The size an image of `size` is resized to before the backbone."""
        scale = min(self.config.min_size / min(size), self.config.max_size / max(size))
        return round(size[0] * scale), round(size[1] * scale)

    def class_probabilities(self, class_logits: torch.Tensor) -> torch.Tensor:
        """(N, num_classes) probabilities: sigmoids, or the softmax without its 'no object' column."""
        if self.config.class_loss == "softmax":
            return class_logits.softmax(-1)[:, :-1]
        return class_logits.sigmoid()

    def detections(self, prediction: StagePrediction, b: int, size: tuple[int, int], side: int,
                   original: torch.Size) -> dict:
        """The best (query, class) pairs of image b (K-Net ranks pairs too), masks at the `original` size.

        A pair's score is its class probability times the mean probability inside the query's mask
        (as Mask2Former scores), so a confident class on a vague mask ranks lower. The best
        `detections_per_image` pairs are kept (fewer only when there are fewer pairs), then
        `score_threshold` applies.
        """
        c = self.config
        low_resolution = prediction.mask_logits[b].sigmoid()
        inside = low_resolution >= 0.5
        mask_scores = (low_resolution * inside).flatten(1).sum(1) / inside.flatten(1).sum(1).clamp(min=1)
        pair_scores = self.class_probabilities(prediction.class_logits[b]) * mask_scores[:, None]
        num_classes = pair_scores.shape[1]
        scores, pairs = pair_scores.flatten().topk(min(c.detections_per_image, pair_scores.numel()))
        keep = scores >= c.score_threshold
        scores, pairs = scores[keep], pairs[keep]
        queries, labels = pairs // num_classes, pairs % num_classes
        unique, inverse = queries.unique(return_inverse=True)
        if len(unique):
            masks = F.interpolate(prediction.mask_logits[b, unique][None], size=(side, side), mode="bilinear",
                                  align_corners=False)[0]
            top, left = offsets(size, side)
            masks = resize(masks[:, top : top + size[0], left : left + size[1]], tuple(original)).sigmoid()
        else:  # interpolate refuses empty batches
            masks = prediction.mask_logits.new_zeros((0, *original))
        attributes = prediction.attribute_logits[b, unique].sigmoid()
        return {"boxes": boxes_from_masks(masks >= 0.5)[inverse], "labels": labels, "scores": scores,
                "masks": masks[inverse, None], "attributes": attributes[inverse]}


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) bilinearly resized to `size` (antialiased when shrinking); unchanged if already that size."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrink = size[0] < images.shape[-2]
    return F.interpolate(images[None], size=size, mode="bilinear", align_corners=False, antialias=shrink)[0]


def offsets(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(top, left) of an image of `size` centred on a square of `side`, rounded as albumentations'
    PadIfNeeded rounds."""
    return (side - size[0]) // 2, (side - size[1]) // 2


def centre(images: torch.Tensor, side: int) -> torch.Tensor:
    """(C, H, W) zero-padded to (C, side, side), centred."""
    top, left = offsets(images.shape[-2:], side)
    return F.pad(images, (left, side - images.shape[-1] - left, top, side - images.shape[-2] - top))


def target_at_mask_stride(target: dict, size: tuple[int, int], side: int, stride: int) -> dict:
    """Target masks resized and centred like the image, then averaged over `stride` blocks: the
    fraction of each prediction pixel the instance covers, flattened to (M, P)."""
    masks = target["masks"].float()
    if len(masks) == 0:
        return {**target, "masks": masks.new_zeros((0, (side // stride) ** 2))}
    masks = centre(resize(masks, size), side)
    return {**target, "masks": F.avg_pool2d(masks[:, None], stride).flatten(1)}


def boxes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """(K, H, W) bool -> (K, 4) float xyxy boxes enclosing each mask (x2, y2 exclusive; zeros if empty)."""
    k, height, width = masks.shape
    rows, cols = masks.any(2), masks.any(1)
    y0, x0 = rows.int().argmax(1), cols.int().argmax(1)
    y1, x1 = height - rows.flip(1).int().argmax(1), width - cols.flip(1).int().argmax(1)
    boxes = torch.stack([x0, y0, x1, y1], 1).float()
    return boxes * rows.any(1, keepdim=True)

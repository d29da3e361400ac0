"""FashionFormer's decoder (paper, 3.2-3.3): initial kernels, then stages with two streams.

The initial kernels are learnt (K-Net's and the paper's), or, with `query_selection`, the
features of the X_fuse pixels a class head scores highest (the two-stage query selection of
Deformable DETR 4.2 and Mask DINO 3.2: queries start where the image has instances); the
initial masks are kernel . X_fuse either way.

Segmentation stream, per stage: group X_fuse under each query's (binarised) mask, update the
query by dynamic convolution, self-attention and FFN, predict class logits and new masks
(refined query . X_fuse) for the next stage. `decoder: multi_layer_attention` replaces grouping +
dynamic convolution with the layered-attention paper's internal and external attention of the
queries over pixel positions (eq. 1, `pipeline.models.fashionformer.layered`).

Attribute stream, per stage: an attribute query (a learnable one added to the object query; or,
shared, one made from the object query) is updated from the instance's features by its own
dynamic convolution, self-attention and FFN, and predicts the attribute logits. Its
features come from multi-layer rendering (MLR): the masks grouped over each pyramid level,
concatenated and projected; without MLR, from X_fuse alone. With `modulated` rendering (the
layered-attention paper's eq. 2, F_atr = sum_uv P F Q) each pixel's feature is multiplied by a
per-pixel, per-instance query map (`layered.PixelQueries`, times the stage's refined query).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.fashionformer.blocks import (
    Attention, DynamicConv, FeedForward, group, linear_norm_relu, predict_masks, prediction_head,
)
from pipeline.models.fashionformer.layered import LayeredAttentionStage, LayeredFeatures, PixelQueries


class StagePrediction(NamedTuple):
    class_logits: torch.Tensor  # (B, N, num_classes), + 1 for 'no object' with the softmax class loss
    mask_logits: torch.Tensor  # (B, N, H/4, W/4)
    attribute_logits: torch.Tensor  # (B, N, num_attributes)


def binary(mask_logits: torch.Tensor) -> torch.Tensor:
    """Masks thresholded at probability 0.5: grouping sums features over the pixels an instance
    has, not a soft halo over the whole image (the official code's hard_mask_thr)."""
    return (mask_logits > 0).to(mask_logits.dtype)


class QuerySelection(nn.Module):
    """X_fuse (B, D, H, W) -> initial queries (B, N, D) and their class logits (B, N, classes).

    A class head scores every pixel; the N pixels with the highest foreground logit give the
    queries, their features (detached, as Mask DINO does) through FC + LayerNorm. The class
    logits are supervised with the initial masks, so the head learns which pixels to offer.
    """

    def __init__(self, dim: int, num_queries: int, num_classes: int, foreground: int, class_prior: float | None):
        super().__init__()
        self.num_queries, self.foreground = num_queries, foreground
        self.classify = prediction_head(dim, num_classes, class_prior)
        self.project = nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim))

    def forward(self, fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = fused.flatten(2).transpose(1, 2)
        logits = self.classify(pixels)
        best = logits[..., :self.foreground].max(-1).values.topk(min(self.num_queries, pixels.shape[1]), dim=1).indices
        chosen = pixels.gather(1, best[..., None].expand(-1, -1, pixels.shape[-1]))
        return self.project(chosen.detach()), logits.gather(1, best[..., None].expand(-1, -1, logits.shape[-1]))


class SegmentationStage(nn.Module):
    """Mask grouping, dynamic convolution, self-attention, FFN; class logits and new masks."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, num_classes: int, class_prior: float | None):
        super().__init__()
        self.update = DynamicConv(dim)
        self.attention = Attention(dim, heads)
        self.ffn = FeedForward(dim, ffn_dim)
        self.classify = prediction_head(dim, num_classes, class_prior)
        self.mask_kernel = nn.Sequential(linear_norm_relu(dim, dim), nn.Linear(dim, dim))

    def forward(self, queries, mask_logits, fused, context=None):
        queries = self.update(group(binary(mask_logits), fused), queries)
        queries = self.ffn(self.attention(queries))
        return queries, self.classify(queries), predict_masks(self.mask_kernel(queries), fused)


class MultiLayerRendering(nn.Module):
    """Masks pooled to the first `levels` pyramid levels, grouped per level, concatenated, FC+LN+ReLU.

    `modulated` (eq. 2): each level's pixels are multiplied by a query map Q(u, v) = (1 + W q) *
    (1 + G(u, v)), q the stage's refined query, G per pixel (`layered.PixelQueries`); W and G start
    at zero, so training starts from plain rendering.
    """

    def __init__(self, levels: int, channels: int, dim: int, modulated: bool = False):
        super().__init__()
        self.levels = levels
        self.modulate = nn.Linear(dim, levels * channels) if modulated else None
        self.pixel_queries = PixelQueries(levels, channels) if modulated else None
        if modulated:
            nn.init.zeros_(self.modulate.weight)
            nn.init.zeros_(self.modulate.bias)
        self.project = linear_norm_relu(levels * channels, dim)

    def rendered(self, mask_logits: torch.Tensor, pyramid: list[torch.Tensor], queries: torch.Tensor) -> torch.Tensor:
        """(B, N, levels * channels): the instances' features on each level, concatenated (eq. 2's F_atr)."""
        parts, logits = [], mask_logits
        for k, level in enumerate(pyramid[: self.levels]):
            # Levels halve the resolution: the logits' 2x2 block means, level after level.
            while logits.shape[-1] > level.shape[-1]:
                logits = F.avg_pool2d(logits, 2)
            parts.append(group(binary(logits), level if self.pixel_queries is None else self.pixel_queries(level, k)))
        grouped = torch.cat(parts, dim=-1)
        if self.modulate is not None:
            grouped = grouped * (1 + self.modulate(queries))
        return grouped

    def forward(self, mask_logits: torch.Tensor, pyramid: list[torch.Tensor], queries: torch.Tensor) -> torch.Tensor:
        return self.project(self.rendered(mask_logits, pyramid, queries))


class AttributeStage(nn.Module):
    """The attribute stream of one stage: its own query, dynamic convolution, self-attention and FFN.

    Its query is a learnable attribute query added to the object query the stage started from
    (residual), or, shared, a projection of the refined object query (the official code's choice).
    """

    def __init__(self, dim: int, heads: int, ffn_dim: int, num_attributes: int, attribute_prior: float,
                 rendering: MultiLayerRendering | None, num_queries: int, shared_query: bool):
        super().__init__()
        self.rendering = rendering
        self.query = None if shared_query else nn.Parameter(torch.randn(num_queries, dim) * dim**-0.5)
        self.from_object = nn.Linear(dim, dim) if shared_query else None
        self.update = DynamicConv(dim)
        self.attention = Attention(dim, heads)
        self.ffn = FeedForward(dim, ffn_dim)
        self.classify = prediction_head(dim, num_attributes, attribute_prior)

    def forward(self, object_queries, refined_queries, mask_logits, fused, pyramid):
        queries = self.from_object(refined_queries) if self.query is None else self.query + object_queries
        if self.rendering is not None:
            features = self.rendering(mask_logits, pyramid, refined_queries)
        else:
            features = group(binary(mask_logits), fused)
        queries = self.ffn(self.attention(self.update(features, queries)))
        return self.classify(queries)


# Per decoder variant: its segmentation stage and what the stages read besides X_fuse, made once
# from the pyramid (None: the pyramid itself, which the FashionFormer stage does not read).
STAGES = {"fashionformer": SegmentationStage, "multi_layer_attention": LayeredAttentionStage}
CONTEXTS = {"fashionformer": None, "multi_layer_attention": LayeredFeatures}
DECODERS = tuple(STAGES)


class Decoder(nn.Module):
    """(X_fuse, pyramid) -> (the initial prediction, one StagePrediction per stage)."""

    def __init__(self, *, num_queries: int, dim: int, fpn_channels: int, heads: int, ffn_dim: int,
                 num_stages: int, num_classes: int, num_attributes: int, variant: str = "fashionformer",
                 mlr: bool = True, mlr_levels: int = 4, mlr_modulation: bool = False,
                 shared_attribute_query: bool = False, query_selection: bool = False, foreground: int | None = None,
                 class_prior: float | None = 0.01, attribute_prior: float = 0.01):
        super().__init__()
        if variant not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, not {variant!r}")
        if not mlr and fpn_channels != dim:
            raise ValueError("without MLR the attribute stream groups X_fuse: fpn_channels must equal hidden_dim")
        # The initial queries are the kernels of a 1x1 convolution (no bias) giving the initial masks.
        # `foreground`: the class logits that are classes (all but a softmax's 'no object').
        self.selection = QuerySelection(dim, num_queries, num_classes, foreground or num_classes, class_prior) \
            if query_selection else None
        self.initial_kernels = None if query_selection else nn.Parameter(torch.randn(num_queries, dim) * dim**-0.5)
        self.context = None if CONTEXTS[variant] is None else CONTEXTS[variant](fpn_channels, dim)
        self.segmentation = nn.ModuleList(
            STAGES[variant](dim, heads, ffn_dim, num_classes, class_prior) for _ in range(num_stages)
        )
        self.attributes = nn.ModuleList(
            AttributeStage(dim, heads, ffn_dim, num_attributes, attribute_prior,
                           MultiLayerRendering(mlr_levels, fpn_channels, dim, mlr_modulation) if mlr else None,
                           num_queries, shared_attribute_query)
            for _ in range(num_stages)
        )

    def forward(self, fused: torch.Tensor, pyramid: list[torch.Tensor]):
        """-> (the initial prediction: masks M0 and, with query selection, class logits; attribute
        logits None), and one StagePrediction per stage."""
        if self.selection is None:
            queries, initial_classes = self.initial_kernels.expand(fused.shape[0], -1, -1), None
        else:
            queries, initial_classes = self.selection(fused)
        mask_logits = initial_masks = predict_masks(queries, fused)
        context = pyramid if self.context is None else self.context(pyramid)
        predictions = []
        for segmentation, attributes in zip(self.segmentation, self.attributes):
            refined, class_logits, new_masks = segmentation(queries, mask_logits, fused, context)
            attribute_logits = attributes(queries, refined, mask_logits, fused, pyramid)
            predictions.append(StagePrediction(class_logits, new_masks, attribute_logits))
            queries, mask_logits = refined, new_masks
        return StagePrediction(initial_classes, initial_masks, None), predictions

    def xavier_(self) -> None:
        """Every weight matrix of the stages Xavier-uniform, as the official code's
        KernelUpdateHead.init_weights does: biases (the class and attribute priors among them),
        LayerNorms and the initial kernels keep theirs. Rendering's modulation, which the official
        code does not have, stays at zero so training starts from plain rendering."""
        for stage in [*self.segmentation, *self.attributes]:
            for name, parameter in stage.named_parameters():
                if parameter.dim() > 1 and not name.startswith("rendering.modulate"):
                    nn.init.xavier_uniform_(parameter)

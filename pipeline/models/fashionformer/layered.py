"""The `multi_layer_attention` segmentation stream: the multi-layered attention module of 'DETR-based
Layered Clothing Segmentation and Fine-Grained Attribute Recognition' (section 3.3, eq. 1).

No mask grouping, no dynamic convolution. Each stage starts from the queries Q and the current
mask prediction P (the initial one is Q (x) X_fuse, a 1x1 convolution whose kernels are the
queries):

- internal attention: Q attends over keys and values made from P, namely P rendered on each
  layered feature X1..X4 (the probability-weighted mean feature of each query's mask at that
  scale, plus a level embedding). Each query sees its own instance's components at four scales
  and merges them into a new query, the ExternalQuery E, which gives a new prediction E (x) X_fuse;
- external attention: E attends over the internal predictions of all queries (each rendered on
  X_fuse, plus the query that made it), so that layered garments see each other; FFN, then the
  class logits and the next mask, mask kernel (x) X_fuse.

The paper gives no more detail than this. Here the renderings are soft (sigmoid probabilities,
not thresholded), so the internal prediction is trained through the external attention that
reads it; only the stage's final masks are supervised, as FashionFormer's are.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.fashionformer.blocks import (
    Attention, FeedForward, linear_norm_relu, predict_masks, prediction_head,
)

LEVELS = 4  # X1..X4


def render(probabilities: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """(B, N, H, W) mask probabilities on (B, C, h, w) features -> (B, N, C) probability-weighted means.

    The masks are pooled in 2x2 blocks down to the features' resolution (pyramid levels halve it).
    """
    while probabilities.shape[-1] > features.shape[-1]:
        probabilities = F.avg_pool2d(probabilities, 2)
    weights = probabilities.flatten(2)
    summed = torch.bmm(weights, features.flatten(2).transpose(1, 2))
    return summed / weights.sum(-1, keepdim=True).clamp(min=1e-6)


class LayeredFeatures(nn.Module):
    """Pyramid levels X1..X4 (fpn_channels) projected to the queries' width by 1x1 convolutions."""

    def __init__(self, channels: int, dim: int):
        super().__init__()
        self.project = nn.ModuleList(nn.Conv2d(channels, dim, 1) for _ in range(LEVELS))

    def forward(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        return [project(level) for project, level in zip(self.project, pyramid)]


class LayeredAttentionStage(nn.Module):
    """Internal attention (per query, over its prediction at 4 scales), external attention (over all
    queries' internal predictions), FFN; class logits and new masks."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, num_classes: int, class_prior: float | None):
        super().__init__()
        self.level_embedding = nn.Parameter(torch.randn(LEVELS, dim) * 0.02)
        self.component_norm = nn.LayerNorm(dim)
        self.internal = Attention(dim, heads)
        self.internal_kernel = nn.Sequential(linear_norm_relu(dim, dim), nn.Linear(dim, dim))
        self.prediction_norm = nn.LayerNorm(dim)
        self.external = Attention(dim, heads)
        self.ffn = FeedForward(dim, ffn_dim)
        self.classify = prediction_head(dim, num_classes, class_prior)
        self.mask_kernel = nn.Sequential(linear_norm_relu(dim, dim), nn.Linear(dim, dim))

    def forward(self, queries, mask_logits, fused, layered):
        b, n, d = queries.shape
        probabilities = mask_logits.sigmoid()
        components = torch.stack([render(probabilities, level) for level in layered], dim=2)  # (B, N, 4, d)
        components = self.component_norm(components) + self.level_embedding
        external_queries = self.internal(queries.reshape(b * n, 1, d), components.flatten(0, 1)).view(b, n, d)
        internal_masks = predict_masks(self.internal_kernel(external_queries), fused)
        predictions = self.prediction_norm(render(internal_masks.sigmoid(), fused)) + external_queries
        queries = self.ffn(self.external(external_queries, predictions))
        return queries, self.classify(queries), predict_masks(self.mask_kernel(queries), fused)

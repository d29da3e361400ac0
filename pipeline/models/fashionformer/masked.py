"""The `masked_attention` segmentation stream: Mask2Former-style cross-attention over pixels.

Each stage refines the queries by two cross-attentions instead of grouping + dynamic convolution:
one over the X_fuse pixels inside the query's current mask prediction (all pixels when its mask
is empty), then one over the pyramid features (strides 8..32, with positional and level
embeddings), which sees the whole garment at several scales. Self-attention, FFN and the heads
follow as in the FashionFormer stage. (The layered-attention paper's own module is
`pipeline.models.fashionformer.layered`.)
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.models.backbones import STRIDES
from pipeline.models.fashionformer.blocks import (
    Attention, FeedForward, linear_norm_relu, predict_masks, prediction_head,
)
from pipeline.models.fashionformer.encoder import sine_position_embedding

PYRAMID_LEVELS = slice(1, None)  # X2..X4: X1 is already X_fuse's resolution


class PyramidMemory(nn.Module):
    """Pyramid levels X2..X4 as one token sequence (B, T, dim) for the pyramid attention."""

    def __init__(self, channels: int, dim: int, levels: int = 3):
        super().__init__()
        self.project = nn.Linear(channels, dim)
        self.level_embedding = nn.Parameter(torch.zeros(levels, dim))
        nn.init.normal_(self.level_embedding, std=0.02)

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        tokens = []
        for embedding, level, stride in zip(self.level_embedding, pyramid[PYRAMID_LEVELS], STRIDES[PYRAMID_LEVELS]):
            h, w = level.shape[-2:]
            position = sine_position_embedding(h, w, embedding.shape[0], stride, level.device).flatten(1).T
            tokens.append(self.project(level.flatten(2).transpose(1, 2)) + position + embedding)
        return torch.cat(tokens, dim=1)


class MaskedAttentionStage(nn.Module):
    """Masked attention over X_fuse, attention over the pyramid, self-attention, FFN; class logits, new masks."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, num_classes: int, class_prior: float):
        super().__init__()
        self.masked = Attention(dim, heads)
        self.pyramid = Attention(dim, heads)
        self.attention = Attention(dim, heads)
        self.ffn = FeedForward(dim, ffn_dim)
        self.classify = prediction_head(dim, num_classes, class_prior)
        self.mask_kernel = nn.Sequential(linear_norm_relu(dim, dim), nn.Linear(dim, dim))

    def forward(self, queries, mask_logits, fused, memory):
        outside = (mask_logits < 0).flatten(2)  # probability below 0.5
        outside &= ~outside.all(dim=-1, keepdim=True)
        queries = self.masked(queries, fused.flatten(2).transpose(1, 2), outside)
        queries = self.ffn(self.attention(self.pyramid(queries, memory)))
        return queries, self.classify(queries), predict_masks(self.mask_kernel(queries), fused)

"""Building blocks of the decoder stages: dynamic convolution, attention, FFN, mask grouping.

Attention is written out as matrix products rather than `nn.MultiheadAttention` or
`scaled_dot_product_attention`: their fused CPU kernels are invisible to torch's FLOP counter,
and the counts are part of the model's documentation (README, Table 3 of the paper).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def group(masks: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Mask grouping: (B, N, H, W) masks x (B, C, H, W) features -> (B, N, C), summed over pixels."""
    return torch.bmm(masks.flatten(2), features.flatten(2).transpose(1, 2))


def linear_norm_relu(in_features: int, out_features: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, out_features), nn.LayerNorm(out_features), nn.ReLU(inplace=True))


def prediction_head(dim: int, outputs: int, prior: float | None) -> nn.Sequential:
    """Two FC layers; the bias starts every sigmoid output at probability `prior` (focal loss init),
    or, for softmax outputs (prior None), as nn.Linear initialises it."""
    head = nn.Sequential(linear_norm_relu(dim, dim), nn.Linear(dim, outputs))
    if prior is not None:
        nn.init.constant_(head[-1].bias, -math.log((1 - prior) / prior))
    return head


def predict_masks(kernels: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """(B, N, C) mask kernels . (B, C, H, W) X_fuse -> (B, N, H, W) mask logits."""
    return torch.bmm(kernels, fused.flatten(2)).unflatten(2, fused.shape[-2:])


class DynamicConv(nn.Module):
    """K-Net's kernel update: the query is rewritten from its grouped feature through two gates.

    gate_x and gate_q = sigmoid(LayerNorm(FC(FC(x) * FC(q)))); the new query is
    FC(gate_x * LN(FC(x)) + gate_q * LN(FC(q))) followed by LayerNorm and ReLU.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.feature_in = nn.Linear(dim, 2 * dim)
        self.query_in = nn.Linear(dim, 2 * dim)
        self.feature_gate = nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim))
        self.query_gate = nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim))
        self.feature_norm = nn.LayerNorm(dim)
        self.query_norm = nn.LayerNorm(dim)
        self.out = linear_norm_relu(dim, dim)

    def forward(self, grouped: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        feature_mix, feature_value = self.feature_in(grouped).chunk(2, dim=-1)
        query_mix, query_value = self.query_in(queries).chunk(2, dim=-1)
        mixed = feature_mix * query_mix
        gate_x = self.feature_gate(mixed).sigmoid()
        gate_q = self.query_gate(mixed).sigmoid()
        return self.out(gate_x * self.feature_norm(feature_value) + gate_q * self.query_norm(query_value))


class Attention(nn.Module):
    """Multi-head attention of queries (B, N, D) over keys/values (B, T, D), residual + LayerNorm."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.project = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        memory = queries if memory is None else memory
        b, n, d = queries.shape
        q = self.query(queries).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.key_value(memory).view(b, memory.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
        attended = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        return self.norm(queries + self.project(attended))


class FeedForward(nn.Module):
    """Two-layer FFN with residual + LayerNorm."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.layers(x))

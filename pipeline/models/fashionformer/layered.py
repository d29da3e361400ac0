"""The `multi_layer_attention` segmentation stream and eq. 2's per-pixel queries: the multi-layered
attention module of 'DETR-based Layered Clothing Segmentation and Fine-Grained Attribute
Recognition' (Tian, Cao and Mok, section 3.3).

Eq. 1, P_mask = SoftMax(Q K^T / sqrt(C)) F, is attention of the queries over pixel positions whose
keys carry positional embeddings; the paper uses it twice per stage, after the initial mask
prediction Q (x) X_fuse (a 1x1 convolution whose kernels are the queries):

- internal attention: Q attends over every pixel of the layered features X1..X4 (keys: the pixel's
  feature plus its sine position and a level embedding; values: the features). Its keys and values
  "come from the mask prediction": each query's logits get log P of its current mask at that pixel
  (pooled to the level, not back-propagated, as Mask2Former's masked attention), so a query gathers
  its own instance's components at four scales and merges them into an ExternalQuery E, which gives
  a new prediction E (x) X_fuse;
- external attention: E attends over every pixel of X_fuse (keys with positions again) whose keys
  and values also carry the internal prediction: each pixel's softmax over the queries' internal
  mask logits mixes their ExternalQueries into one token per pixel (as the external attention of
  the paper's reference [12], Shi et al., ECCV 2022, renders its class tokens by the intermediate
  prediction), so a query sees which other garments claim the pixels it looks at; FFN, then the
  class logits and the next mask, mask kernel (x) X_fuse.

Section 3.3 gives the order of these steps, eq. 1 and what feeds each attention; head count,
residual connections, norms, the FFN and the soft mask bias are this project's choices.

Eq. 2, F_atr = sum_uv P(u, v) F_i(u, v) Q_i(u, v), multiplies each pixel's feature by a d x H x W
query map. Here Q_i(u, v) = (1 + W q) * (1 + G_i(u, v)): q the stage's refined query (one vector
per instance) and G_i a 1x1 convolution of the level plus its positions (one map per level and
stage, section 3.2's "1 x 1 convolution ... to generate a d x H x W feature map, which is the
query"). The product factorises, so the sum is the mask grouping of F_i * (1 + G_i) times (1 + W q):
per-pixel and per-instance without an N x d x H x W tensor. W and G start at zero, so training
starts from plain rendering.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.backbones import STRIDES
from pipeline.models.fashionformer.blocks import FeedForward, linear_norm_relu, predict_masks, prediction_head
from pipeline.models.fashionformer.encoder import sine_position_embedding

LEVELS = 4  # X1..X4
MIN_PROBABILITY = 1e-4  # floor of the mask bias: log P >= -9.2, so an empty mask attends everywhere alike


def pixels_and_positions(level: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) feature map -> its pixels (B, H*W, C) and their sine positions (1, H*W, C)."""
    height, width = level.shape[-2:]
    positions = sine_position_embedding(height, width, level.shape[1], stride, level.device).to(level.dtype)
    return level.flatten(2).transpose(1, 2), positions.flatten(1).T[None]


def mask_bias(mask_logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, N, H, W) mask logits -> (B, N, h*w) log probabilities at a level's size (2x2 block means),
    not back-propagated."""
    probabilities = mask_logits.detach().sigmoid()
    while probabilities.shape[-1] > size[-1]:
        probabilities = F.avg_pool2d(probabilities, 2)
    return probabilities.clamp(min=MIN_PROBABILITY).log().flatten(2)


class PixelAttention(nn.Module):
    """Eq. 1: multi-head attention of queries (B, N, D) over pixels (B, L, D): keys from pixel +
    position, values from the pixel, an optional additive bias (B, N, L); residual + LayerNorm.

    Written as matrix products, as `blocks.Attention`, so that the FLOP counter sees it.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.project = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def weights(self, queries, pixels, positions, bias=None) -> torch.Tensor:
        """(B, heads, N, L) attention weights: softmax over the L pixel positions."""
        b, n, _ = queries.shape
        q = self.query(queries).view(b, n, self.heads, -1).transpose(1, 2)
        k = self.key(pixels + positions).view(b, pixels.shape[1], self.heads, -1).transpose(1, 2)
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if bias is not None:
            logits = logits + bias[:, None]
        return logits.softmax(-1)

    def forward(self, queries, pixels, positions, bias=None) -> torch.Tensor:
        b, n, d = queries.shape
        v = self.value(pixels).view(b, pixels.shape[1], self.heads, -1).transpose(1, 2)
        attended = (self.weights(queries, pixels, positions, bias) @ v).transpose(1, 2).reshape(b, n, d)
        return self.norm(queries + self.project(attended))


class LayeredFeatures(nn.Module):
    """Pyramid levels X1..X4 (fpn_channels) projected to the queries' width by 1x1 convolutions."""

    def __init__(self, channels: int, dim: int):
        super().__init__()
        self.project = nn.ModuleList(nn.Conv2d(channels, dim, 1) for _ in range(LEVELS))

    def forward(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        return [project(level) for project, level in zip(self.project, pyramid)]


class LayeredAttentionStage(nn.Module):
    """Internal attention (each query over the pixels of X1..X4 under its mask), external attention
    (over the pixels of X_fuse with the internal prediction), FFN; class logits and new masks."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, num_classes: int, class_prior: float | None):
        super().__init__()
        self.level_embedding = nn.Parameter(torch.randn(LEVELS, dim) * 0.02)
        self.internal = PixelAttention(dim, heads)
        self.internal_kernel = nn.Sequential(linear_norm_relu(dim, dim), nn.Linear(dim, dim))
        self.external = PixelAttention(dim, heads)
        self.ffn = FeedForward(dim, ffn_dim)
        self.classify = prediction_head(dim, num_classes, class_prior)
        self.mask_kernel = nn.Sequential(linear_norm_relu(dim, dim), nn.Linear(dim, dim))

    def internal_inputs(self, mask_logits, layered):
        """The internal attention's pixels, positions and mask bias over X1..X4, concatenated."""
        pixels, positions, bias = [], [], []
        for k, (level, stride) in enumerate(zip(layered, STRIDES)):
            level_pixels, level_positions = pixels_and_positions(level, stride)
            pixels.append(level_pixels)
            positions.append(level_positions + self.level_embedding[k])
            bias.append(mask_bias(mask_logits, level.shape[-2:]))
        return torch.cat(pixels, 1), torch.cat(positions, 1), torch.cat(bias, 2)

    def external_inputs(self, external_queries, internal_masks, fused, stride: int):
        """X_fuse's pixels plus each pixel's token of the internal prediction, and their positions."""
        pixels, positions = pixels_and_positions(fused, stride)
        tokens = internal_masks.flatten(2).softmax(1).transpose(1, 2) @ external_queries  # (B, H*W, d)
        return pixels + tokens, positions

    def forward(self, queries, mask_logits, fused, layered):
        external_queries = self.internal(queries, *self.internal_inputs(mask_logits, layered))
        internal_masks = predict_masks(self.internal_kernel(external_queries), fused)
        stride = STRIDES[0] * layered[0].shape[-1] // fused.shape[-1]  # X_fuse's: 4, or 2 (mask_stride)
        pixels, positions = self.external_inputs(external_queries, internal_masks, fused, stride)
        queries = self.ffn(self.external(external_queries, pixels, positions))
        return queries, self.classify(queries), predict_masks(self.mask_kernel(queries), fused)


class PixelQueries(nn.Module):
    """Eq. 2's per-pixel query maps of one attribute stage: level i's features times (1 + G_i), G_i a
    1x1 convolution of the level plus its sine positions, starting at zero."""

    def __init__(self, levels: int, channels: int):
        super().__init__()
        self.maps = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(levels))
        for conv in self.maps:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def query_map(self, level: torch.Tensor, k: int) -> torch.Tensor:
        """(B, C, H, W): G_k of the level at its place in the pyramid."""
        height, width = level.shape[-2:]
        positions = sine_position_embedding(height, width, level.shape[1], STRIDES[k], level.device).to(level.dtype)
        return self.maps[k](level + positions)

    def forward(self, level: torch.Tensor, k: int) -> torch.Tensor:
        return level * (1 + self.query_map(level, k))

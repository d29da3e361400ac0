"""FashionFormer's encoder: backbone + FPN, and the fused high-resolution map X_fuse (paper, 3.1).

The pyramid levels X1..X4 (strides 4..32) are kept for the attribute stream's multi-layer
rendering; X_fuse is their sum at stride 4 with a sine positional embedding, so that queries can
tell apart two instances that look alike. `fuse: semantic_fpn` sums them as the official code
(K-Net's SemanticFPNWrapper, Panoptic FPN's semantic head) does: each level through its own
3x3 convolutions, each followed by a 2x upsampling, down to the finest level's resolution.
"""
from __future__ import annotations

from collections import OrderedDict

import timm
import torch
import torch.nn.functional as F
from timm.layers import freeze_batch_norm_2d
from torch import nn
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork

from pipeline.models.backbones import STRIDES

# timm names of backbones that need `strict_img_size=False` to accept any padded image size.
FREE_SIZE_PREFIXES = ("swin",)


def create_backbone(name: str, frozen_norm: bool = False) -> nn.Module:
    """A timm feature extractor (ResNet, Swin, ...), randomly initialised (the model's `init` loads weights).

    `frozen_norm` freezes its batch norms, as for pretrained weights: detection batches are too
    small for batch statistics.
    """
    extra = {"strict_img_size": False} if name.startswith(FREE_SIZE_PREFIXES) else {}
    body = timm.create_model(name, features_only=True, pretrained=False, **extra)
    return freeze_batch_norm_2d(body) if frozen_norm else body


def conv_norm_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution, group norm (32 groups where the width allows), ReLU."""
    groups = 32 if out_channels % 32 == 0 else 1
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.GroupNorm(groups, out_channels), nn.ReLU(inplace=True))


class SemanticFPN(nn.Module):
    """Pyramid levels (strides 4, 8, 16, 32) -> one map at stride 4: level k through k blocks of
    conv + 2x upsampling (the finest through one conv), summed."""

    def __init__(self, channels: int, levels: int):
        super().__init__()
        self.levels = nn.ModuleList(nn.Sequential(*self.blocks(channels, k)) for k in range(levels))

    @staticmethod
    def blocks(channels: int, k: int) -> list[nn.Module]:
        if k == 0:
            return [conv_norm_relu(channels, channels)]
        return [module for _ in range(k) for module in
                (conv_norm_relu(channels, channels), nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))]

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        return sum(level(features) for level, features in zip(self.levels, pyramid))


FUSES = ("sum", "semantic_fpn")


def sine_position_embedding(height: int, width: int, channels: int, stride: int = 4, device=None) -> torch.Tensor:
    """(channels, height, width) sine/cosine embedding of a feature map's (y, x) pixel centres.

    Positions are absolute, in units of 4 input pixels (X_fuse's cells), not normalised by the map
    size: a place keeps its embedding whatever the padded batch size is, and the wavelengths
    (2 pi to 2 pi 10^4 cells) resolve single cells as well as the whole image.
    """
    quarter = channels // 4
    frequencies = 10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter)
    y = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * stride / 4
    x = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * stride / 4
    y, x = y[:, None] / frequencies, x[:, None] / frequencies  # (H, quarter), (W, quarter)
    y = torch.cat([y.sin(), y.cos()], 1).T[:, :, None].expand(-1, height, width)
    x = torch.cat([x.sin(), x.cos()], 1).T[:, None, :].expand(-1, height, width)
    embedding = torch.cat([y, x], 0)
    return F.pad(embedding, (0, 0, 0, 0, 0, channels - embedding.shape[0]))  # channels not divisible by 4


class PixelEncoder(nn.Module):
    """images (B, 3, H, W), H and W multiples of 32 -> (X_fuse (B, hidden, H/s, W/s), [X1..X4]).

    `fuse_stride` s is 4 in the paper. At 2, X_fuse also takes the backbone's stride-2 stage
    (through a 1x1 lateral, as the FPN takes the others): masks of small parts at twice the
    resolution, for small CPU-sized images.
    """

    def __init__(self, backbone: str, fpn_channels: int, hidden_dim: int, position_embedding: bool = True,
                 fuse_stride: int = STRIDES[0], frozen_norm: bool = False, fuse: str = "sum"):
        super().__init__()
        if fuse not in FUSES:
            raise ValueError(f"fuse must be one of {FUSES}, not {fuse!r}")
        self.position_embedding = position_embedding
        self.fuse_stride = fuse_stride
        self.body = create_backbone(backbone, frozen_norm)
        reductions = self.body.feature_info.reduction()
        self.levels = [reductions.index(stride) for stride in STRIDES if stride in reductions]
        if len(self.levels) != len(STRIDES):
            raise ValueError(f"backbone {backbone} has no stages at strides {STRIDES} (it has {reductions})")
        self.channels_last = getattr(self.body, "output_fmt", "NCHW") == "NHWC"  # timm's transformers
        channels = self.body.feature_info.channels()
        self.fpn = FeaturePyramidNetwork([channels[i] for i in self.levels], fpn_channels)
        self.semantic = SemanticFPN(fpn_channels, len(STRIDES)) if fuse == "semantic_fpn" else None
        self.fine = None
        if fuse_stride != STRIDES[0]:
            if fuse_stride not in reductions or fuse_stride > STRIDES[0]:
                raise ValueError(f"fuse_stride must be {STRIDES[0]} or a finer stage of {backbone} ({reductions})")
            self.fine_level = reductions.index(fuse_stride)
            self.fine = nn.Conv2d(channels[self.fine_level], fpn_channels, 1)
        self.fuse = nn.Sequential(
            nn.Conv2d(fpn_channels, hidden_dim, 3, padding=1, bias=False),
            nn.GroupNorm(32 if hidden_dim % 32 == 0 else 1, hidden_dim),
            nn.ReLU(inplace=True),
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        stages = self.body(images)
        if self.channels_last:
            stages = [stage.permute(0, 3, 1, 2) for stage in stages]
        pyramid = list(self.fpn(OrderedDict((str(k), stages[i]) for k, i in enumerate(self.levels))).values())
        levels = pyramid if self.semantic is None else [self.semantic(pyramid)]
        finest = levels if self.fine is None else [self.fine(stages[self.fine_level])] + levels
        size = finest[0].shape[-2:]
        summed = finest[0] + sum(F.interpolate(level, size=size, mode="bilinear", align_corners=False)
                                 for level in finest[1:])
        if self.position_embedding:
            summed = summed + sine_position_embedding(*size, summed.shape[1], self.fuse_stride, summed.device)
        return self.fuse(summed), pyramid

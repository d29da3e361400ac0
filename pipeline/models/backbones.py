"""timm `features_only` backbones under a torchvision feature pyramid.

The output is the OrderedDict torchvision's detection heads expect: levels '0'..'3' at strides
4, 8, 16 and 32, plus 'pool' (stride 64, a max-pool of the last level), each `out_channels` wide.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import timm
import torch
from timm.layers import freeze_batch_norm_2d
from torch import nn
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from pipeline.errors import InputError

# Stages at strides 4, 8, 16, 32 for timm's ResNet-like models.
OUT_INDICES = (1, 2, 3, 4)


def create_body(name: str, weights: str | Path | None = None) -> nn.Module:
    """A timm feature extractor, randomly initialised or loaded from a local weights file.

    `weights` is a state dict file (.pth/.bin/.safetensors) of the classification model
    (timm's or torchvision's ResNets share parameter names) or of the feature extractor
    itself. Nothing is ever downloaded.
    """
    if weights is None:
        return timm.create_model(name, features_only=True, out_indices=OUT_INDICES, pretrained=False)
    if not Path(weights).is_file():
        raise InputError("backbone weights file not found", weights)
    try:
        return timm.create_model(
            name,
            features_only=True,
            out_indices=OUT_INDICES,
            pretrained=True,
            pretrained_cfg_overlay={"file": str(weights)},
        )
    except (RuntimeError, KeyError, ValueError) as error:
        reason = str(error).strip().splitlines()[0]
        raise InputError(f"weights do not fit backbone {name} ({reason})", weights) from None


class TimmFPN(nn.Module):
    """Backbone + FPN with the `out_channels` attribute torchvision's detectors read.

    With pretrained weights the batch norms are frozen, as torchvision does for its detectors:
    detection batches are too small to estimate their statistics. From random init they train.
    """

    def __init__(self, name: str, out_channels: int = 256, weights: str | Path | None = None):
        super().__init__()
        body = create_body(name, weights)
        self.body = freeze_batch_norm_2d(body) if weights is not None else body
        self.fpn = FeaturePyramidNetwork(
            body.feature_info.channels(), out_channels, extra_blocks=LastLevelMaxPool()
        )
        self.out_channels = out_channels

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        levels = self.body(images)
        return self.fpn(OrderedDict((str(i), level) for i, level in enumerate(levels)))

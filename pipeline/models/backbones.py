"""timm `features_only` backbones under a torchvision feature pyramid.

The output is the OrderedDict torchvision's detection heads expect: levels '0'..'3' at strides
4, 8, 16 and 32, plus 'pool' (stride 64, a max-pool of the last level), each `out_channels` wide.
"""
from __future__ import annotations

from collections import OrderedDict

import timm
import torch
from timm.layers import freeze_batch_norm_2d
from torch import nn
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

STRIDES = (4, 8, 16, 32)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalisation(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The input mean and std timm's pretrained weights of backbone `name` were trained with.

    Most ImageNet backbones use the ImageNet statistics; the TensorFlow-ported EfficientNet-Lite
    and some others map pixels to -1..1 (mean = std = 0.5). With frozen batch norms a backbone fed
    the other normalisation sees inputs 2.3x too wide.
    """
    cfg = timm.get_pretrained_cfg(name)
    if cfg is None:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(cfg.mean), tuple(cfg.std)


class TimmFPN(nn.Module):
    """Backbone + FPN with the `out_channels` attribute torchvision's detectors read.

    `frozen_norm` turns the backbone's batch norms into frozen ones, as torchvision does for its
    detectors on pretrained weights: detection batches are too small to estimate their statistics.
    The weights themselves come later, from the model's `init` (pipeline.models.init_weights).
    """

    def __init__(self, name: str, out_channels: int = 256, frozen_norm: bool = False):
        super().__init__()
        body = timm.create_model(name, features_only=True, pretrained=False)
        reductions = body.feature_info.reduction()
        # The extractor returns every stage; the pyramid takes the ones at strides 4..32.
        self.levels = [reductions.index(stride) for stride in STRIDES if stride in reductions]
        if len(self.levels) != len(STRIDES):
            raise ValueError(f"backbone {name} has no stages at strides {STRIDES} (it has {reductions})")
        self.body = freeze_batch_norm_2d(body) if frozen_norm else body
        channels = body.feature_info.channels()
        self.fpn = FeaturePyramidNetwork(
            [channels[i] for i in self.levels], out_channels, extra_blocks=LastLevelMaxPool()
        )
        self.out_channels = out_channels

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        stages = self.body(images)
        return self.fpn(OrderedDict((str(k), stages[i]) for k, i in enumerate(self.levels)))

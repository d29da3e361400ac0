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
from timm.models import load_state_dict
from torch import nn
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from pipeline.errors import InputError

STRIDES = (4, 8, 16, 32)


def create_body(name: str, weights: str | Path | None = None) -> nn.Module:
    """A timm feature extractor, randomly initialised or loaded from a local weights file."""
    body = timm.create_model(name, features_only=True, pretrained=False)
    if weights is not None:
        load_weights(body, weights)
    return body


def load_weights(body: nn.Module, weights: str | Path) -> None:
    """Load a state dict file (.pth/.bin/.safetensors, nothing is downloaded) into `body`.

    The file may be the whole classification model's (timm's and torchvision's ResNets share
    parameter names) or the feature extractor's. It must provide every tensor of `body` and
    nothing else for `body`'s modules, so a ResNet-34 file cannot half-load into a ResNet-18;
    tensors of modules the extractor drops (the classifier) are ignored.
    """
    if not Path(weights).is_file():
        raise InputError("backbone weights file not found", weights)
    try:
        state = load_state_dict(str(weights))
    except Exception as error:  # torch.load / safetensors raise many types on foreign files
        raise InputError(f"not a readable state dict ({type(error).__name__}: {error})", weights) from None
    own = body.state_dict()
    modules = {key.split(".")[0] for key in own}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    foreign = [k for k in state if k not in own and k.split(".")[0] in modules]
    if missing or foreign:
        example = (missing or foreign)[0]
        what = "lacks" if missing else "has extra"
        raise InputError(f"weights do not fit the backbone: {what} tensors such as {example!r}", weights)
    try:
        body.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    except RuntimeError as error:
        raise InputError(f"weights do not fit the backbone ({str(error).strip().splitlines()[-1]})", weights) from None


class TimmFPN(nn.Module):
    """Backbone + FPN with the `out_channels` attribute torchvision's detectors read.

    With pretrained weights the batch norms are frozen by default, as torchvision does for its
    detectors: detection batches are too small to estimate their statistics. From random init they train.
    """

    def __init__(self, name: str, out_channels: int = 256, weights: str | Path | None = None,
                 frozen_norm: bool | None = None):
        super().__init__()
        body = create_body(name, weights)
        reductions = body.feature_info.reduction()
        # The extractor returns every stage; the pyramid takes the ones at strides 4..32.
        self.levels = [reductions.index(stride) for stride in STRIDES if stride in reductions]
        if len(self.levels) != len(STRIDES):
            raise ValueError(f"backbone {name} has no stages at strides {STRIDES} (it has {reductions})")
        frozen = weights is not None if frozen_norm is None else frozen_norm
        self.body = freeze_batch_norm_2d(body) if frozen else body
        channels = body.feature_info.channels()
        self.fpn = FeaturePyramidNetwork(
            [channels[i] for i in self.levels], out_channels, extra_blocks=LastLevelMaxPool()
        )
        self.out_channels = out_channels

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        stages = self.body(images)
        return self.fpn(OrderedDict((str(k), stages[i]) for k, i in enumerate(self.levels)))

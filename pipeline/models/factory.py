"""One entry point for every model family: `load_config` reads a YAML file, `create_model` builds."""
from __future__ import annotations

from pathlib import Path

import yaml
from torch import nn

from pipeline.errors import InputError
from pipeline.models.attribute_mask_rcnn.model import AttributeMaskRCNN, AttributeMaskRCNNConfig
from pipeline.models.config import ModelConfig, from_mapping
from pipeline.models.effdet_mask.model import EffDetMask, EffDetMaskConfig
from pipeline.models.fashionformer.model import FashionFormer, FashionFormerConfig
from pipeline.models.init_weights import load_init


def config_from_mapping(values: dict, path: str | Path = "<config>", lines: dict[str, int] | None = None) -> ModelConfig:
    """The config dataclass of the family named by `values['family']`."""
    lines = lines or {}
    family = values.get("family")
    if family == "attribute_mask_rcnn":
        return from_mapping(AttributeMaskRCNNConfig, values, path, lines)
    if family == "effdet_mask":
        return from_mapping(EffDetMaskConfig, values, path, lines)
    if family == "fashionformer":
        return from_mapping(FashionFormerConfig, values, path, lines)
    raise InputError(f"unknown model family {family!r}", path, lines.get("family"))


def load_config(path: str | Path) -> ModelConfig:
    path = Path(path)
    try:
        text = path.read_text()
        root = yaml.compose(text)
        values = yaml.safe_load(text)
    except FileNotFoundError:
        raise InputError("model config not found", path) from None
    except yaml.YAMLError as error:
        raise InputError(f"not valid YAML ({str(error).splitlines()[0]})", path) from None
    if not isinstance(values, dict):
        raise InputError("model config must be a mapping", path)
    lines = {key.value: key.start_mark.line + 1 for key, _ in root.value}
    return config_from_mapping(values, path, lines)


def create_model(config: ModelConfig) -> nn.Module:
    """The family's model, loaded from `config.init` when it names a checkpoint (`portable` configs never do)."""
    model = build_family(config)
    if config.init is not None:
        load_init(model, config.init, config.init_layout, config.init_min_match)
    return model


def build_family(config: ModelConfig) -> nn.Module:
    if config.family == "attribute_mask_rcnn":
        return AttributeMaskRCNN(config)
    if config.family == "effdet_mask":
        return EffDetMask(config)
    if config.family == "fashionformer":
        return FashionFormer(config)
    raise ValueError(f"unknown model family {config.family!r}")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

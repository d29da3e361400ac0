"""One entry point for every model family: `load_config` reads a YAML file, `create_model` builds.

Only the named family's module is imported, so a kernel that runs one family needs only that
family's packages (a Mask R-CNN-only Kaggle kernel needs no effdet wheel).
"""
from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from torch import nn

from pipeline.errors import InputError
from pipeline.models.config import ModelConfig, from_mapping

# family -> (module, model class, config class)
FAMILIES = {
    "attribute_mask_rcnn": ("pipeline.models.attribute_mask_rcnn.model", "AttributeMaskRCNN",
                            "AttributeMaskRCNNConfig"),
    "effdet_mask": ("pipeline.models.effdet_mask.model", "EffDetMask", "EffDetMaskConfig"),
    "fashionformer": ("pipeline.models.fashionformer.model", "FashionFormer", "FashionFormerConfig"),
    "match_rcnn": ("pipeline.models.match_rcnn.model", "MatchRCNN", "MatchRCNNConfig"),
}


def model_class(family: str) -> type:
    module, model, _ = FAMILIES[family]
    return getattr(importlib.import_module(module), model)


def config_class(family: str) -> type:
    module, _, config = FAMILIES[family]
    return getattr(importlib.import_module(module), config)


def config_from_mapping(values: dict, path: str | Path = "<config>", lines: dict[str, int] | None = None) -> ModelConfig:
    """The config dataclass of the family named by `values['family']`."""
    lines = lines or {}
    family = values.get("family")
    if family not in FAMILIES:
        raise InputError(f"unknown model family {family!r}", path, lines.get("family"))
    return from_mapping(config_class(family), values, path, lines)


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
        from pipeline.models.init_weights import load_init

        load_init(model, config.init, config.init_layout, config.init_min_match)
    return model


def build_family(config: ModelConfig) -> nn.Module:
    """The family's model at its own initialisation, whatever `config.init` says."""
    if config.family not in FAMILIES:
        raise ValueError(f"unknown model family {config.family!r}")
    return model_class(config.family)(config)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

"""One entry point for every model family: `load_config` reads a YAML file, `create_model` builds.

Only the named family's module is imported, so a kernel that runs one family needs only that
family's packages (a Mask R-CNN-only Kaggle kernel needs no effdet wheel).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from pipeline.errors import InputError
from pipeline.models.config import ModelConfig
from pipeline.models.init_weights import load_init
from pipeline.typed import Origins, build, from_mapping, read_yaml


@dataclass(frozen=True)
class Family:
    """What the rest of the pipeline asks of a family: its classes, what data it learns from, what it
    offers. Behaviour that needs the model itself is a method of the model or config class (e.g. the
    config's `crop_side`; the model's `enlarged_input`, which test-time augmentation uses where it exists)."""

    module: str                     # the family package's module with the model and config classes
    model: str
    config: str
    dataset: str = "fashionpedia"   # what it trains on and predicts: fashionpedia | deepfashion2
    retrieval: bool = False         # embeds items for consumer-to-shop retrieval (predict-df2, retrieve)


# The family table: a new family is one row here plus its package.
FAMILIES = {
    "attribute_mask_rcnn": Family("pipeline.models.attribute_mask_rcnn.model", "AttributeMaskRCNN",
                                  "AttributeMaskRCNNConfig"),
    "effdet_mask": Family("pipeline.models.effdet_mask.model", "EffDetMask", "EffDetMaskConfig"),
    "fashionformer": Family("pipeline.models.fashionformer.model", "FashionFormer", "FashionFormerConfig"),
    "match_rcnn": Family("pipeline.models.match_rcnn.model", "MatchRCNN", "MatchRCNNConfig",
                         dataset="deepfashion2", retrieval=True),
}


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}")
    return FAMILIES[name]


def model_class(name: str) -> type:
    entry = family(name)
    return getattr(importlib.import_module(entry.module), entry.model)


def config_class(name: str) -> type:
    entry = family(name)
    return getattr(importlib.import_module(entry.module), entry.config)


def config_from_mapping(values: dict, path: str | Path = "<config>", lines: dict[str, int] | None = None) -> ModelConfig:
    """The config dataclass of the family named by `values['family']`."""
    lines = lines or {}
    family = values.get("family")
    if family not in FAMILIES:
        raise InputError(f"unknown model family {family!r}", path, lines.get("family"))
    return from_mapping(config_class(family), values, path, lines)


def load_config(path: str | Path) -> ModelConfig:
    """The config dataclass of a model YAML file; a bad key or value names its line."""
    if not Path(path).is_file():
        raise InputError("model config not found", path)
    origins = Origins(path)
    values = read_yaml(path, origins)
    name = values.get("family")
    if name not in FAMILIES:
        raise InputError(f"unknown model family {name!r}", *origins(("family",)))
    return build(config_class(name), values, origins)


def create_model(config: ModelConfig) -> nn.Module:
    """The family's model, loaded from `config.init` when it names a checkpoint (`portable` configs never do)."""
    model = build_family(config)
    if config.init is not None:
        load_init(model, config.init, config.init_layout, config.init_min_match)
    return model


def build_family(config: ModelConfig) -> nn.Module:
    """The family's model at its own initialisation, whatever `config.init` says."""
    return model_class(config.family)(config)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

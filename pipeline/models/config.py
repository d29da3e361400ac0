"""Model configs: dataclasses filled from YAML files such as `configs/attribute_mask_rcnn_r50.yaml`.

`ModelConfig` holds what every family shares (the output interface and the attribute loss);
each family subclasses it with its own architecture knobs. `from_mapping` checks a YAML mapping
against a config class: unknown keys and wrongly typed values are input errors naming the line.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from types import UnionType

from pipeline.errors import InputError
from pipeline.models.init_weights import INIT_LAYOUTS
from pipeline.models.losses import LOSS_KINDS


# Keys naming checkpoints (files or named starts, pipeline.models.starts) read only when a model is
# built for training: `portable` drops them, and the training run's key holds the files' content
# hashes instead of their names.
FILE_KEYS = ("init",)


@dataclass(frozen=True)
class ModelConfig:
    family: str = ""
    num_classes: int = 46
    num_attributes: int = 294
    backbone: str = "resnet50"
    init: str | None = None  # checkpoint file or named start (timm:resnet50.a1_in1k) loaded when built for training
    init_layout: str = "auto"  # timm | torchvision_maskrcnn | torchvision_maskrcnn_v2 | effdet | auto (the start's)
    init_min_match: float = 0.9  # share of the model's part and of the checkpoint's tensors that must load
    freeze_backbone_norm: bool | None = None  # batch norms of the backbone frozen; None: when init is set
    attribute_loss: str = "focal"  # 'focal' or 'bce', see pipeline.models.losses
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    attribute_loss_weight: float = 1.0
    attribute_threshold: float = 0.5  # for turning probabilities into attribute ids downstream
    score_threshold: float = 0.05
    detections_per_image: int = 100

    def __post_init__(self):
        if self.attribute_loss not in LOSS_KINDS:
            raise ValueError(f"attribute_loss must be one of {LOSS_KINDS}, not {self.attribute_loss!r}")
        if self.init_layout not in INIT_LAYOUTS:
            raise ValueError(f"init_layout must be one of {INIT_LAYOUTS}, not {self.init_layout!r}")
        if not 0 <= self.init_min_match <= 1:
            raise ValueError(f"init_min_match must be a share from 0 to 1, not {self.init_min_match}")

    @property
    def backbone_norm_frozen(self) -> bool:
        """Detection batches are too small to estimate batch statistics, so a pretrained backbone keeps its own."""
        return self.init is not None if self.freeze_backbone_norm is None else self.freeze_backbone_norm


def portable(config: ModelConfig) -> ModelConfig:
    """`config` as `model.pt` keeps it: the same network, built without reading any file.

    The trained weights replace whatever a checkpoint file initialised, so the file is dropped; the
    structure it implied (frozen batch norms) is kept explicitly.
    """
    return dataclasses.replace(config, freeze_backbone_norm=config.backbone_norm_frozen, **dict.fromkeys(FILE_KEYS))


def from_mapping(cls: type, values: dict, path: str | Path, lines: dict[str, int]):
    """Dataclass `cls` filled from `values`; `lines` maps keys to their 1-based line for errors."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    checked = {}
    for key, value in values.items():
        if key not in known:
            raise InputError(f"unknown config key {key!r}", path, lines.get(key))
        try:
            checked[key] = _coerce(value, hints[key])
        except TypeError as error:
            raise InputError(f"{key}: {error}", path, lines.get(key)) from None
    try:
        return cls(**checked)
    except ValueError as error:
        raise InputError(str(error), path) from None


def to_mapping(config: ModelConfig) -> dict:
    """Plain dict (lists, not tuples) that YAML and JSON can write and `from_mapping` reads back."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def _coerce(value, hint):
    """`value` as type `hint`: int, float, bool, str, tuple[X, ...], list[X], or X | None."""
    if typing.get_origin(hint) in (typing.Union, UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    sequence = typing.get_origin(hint)
    if sequence in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {value!r}")
        return sequence(_coerce(item, typing.get_args(hint)[0]) for item in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise TypeError(f"expected {hint.__name__}, got {value!r}")
    return value

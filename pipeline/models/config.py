"""Model configs: dataclasses filled from YAML files such as `configs/attribute_mask_rcnn_r50.yaml`.

`ModelConfig` holds what every family shares (the output interface and the attribute loss);
each family subclasses it with its own architecture knobs, checked by `pipeline.typed` like every
settings section: unknown keys and wrongly typed values are input errors naming the line.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError
from pipeline.models.init_weights import INIT_LAYOUTS
from pipeline.models.losses import LOSS_KINDS, NORMALISATIONS


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
    attribute_normalisation: str = "rows"  # rows: summed over a row's attributes, averaged over rows;
    # elements: averaged over every (row, attribute), as the official FashionFormer code's cross-entropy
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    attribute_loss_weight: float = 1.0
    attribute_threshold: float = 0.5  # for turning probabilities into attribute ids downstream
    score_threshold: float = 0.05
    detections_per_image: int = 100

    def __post_init__(self):
        if self.attribute_loss not in LOSS_KINDS:
            raise ValueError(f"attribute_loss must be one of {LOSS_KINDS}, not {self.attribute_loss!r}")
        if self.attribute_normalisation not in NORMALISATIONS:
            raise ValueError(f"attribute_normalisation must be one of {NORMALISATIONS}, "
                             f"not {self.attribute_normalisation!r}")
        if self.init_layout not in INIT_LAYOUTS:
            raise ValueError(f"init_layout must be one of {INIT_LAYOUTS}, not {self.init_layout!r}")
        if not 0 <= self.init_min_match <= 1:
            raise ValueError(f"init_min_match must be a share from 0 to 1, not {self.init_min_match}")

    @property
    def crop_side(self) -> int:
        """The square side the model works at, which training crops of `image_size: null` take: the
        side to which it resizes a square image (min_size capped by max_size, for the families that
        resize so; a family with a fixed input square overrides this)."""
        return min(self.min_size, self.max_size)

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

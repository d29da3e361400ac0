"""The `weights` stage on the real installed EfficientNet-Lite0 package, and its file as a model's `init`."""
from __future__ import annotations

import contextlib
import dataclasses
import io
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.models import pretrained
from pipeline.models.factory import create_model, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
GOWN = 578  # ImageNet class


@pytest.fixture(scope="module")
def lite0(tmp_path_factory):
    """(the converted state dict file written by the stage, the stage's printed line)."""
    path = tmp_path_factory.mktemp("weights") / "tf_efficientnet_lite0.pth"
    params = path.parent / "params.yaml"
    params.write_text(f"weights:\n  variant: lite0\n  out: {path}\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["weights", "--params", str(params)]) == 0
    return path, out.getvalue()


def test_stage_maps_every_tensor_and_knows_the_photos(lite0):
    path, out = lite0
    state = torch.load(path, weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0")
    assert state.keys() == model.state_dict().keys() and len(state) == 296
    assert "296 tensors" in out and "china.jpg -> 698 palace" in out and "flower.jpg -> 985 daisy" in out
    model.load_state_dict(state)
    assert pretrained.check_predictions(model, "lite0", path).keys() == {"china.jpg", "flower.jpg"}


def test_a_misplaced_tensor_fails_the_photo_check(lite0):
    state = torch.load(lite0[0], weights_only=True)
    state["conv_stem.weight"] = state["conv_stem.weight"].flip(0)  # stem filters out of order with their norms
    model = timm.create_model("tf_efficientnet_lite0")
    model.load_state_dict(state)
    with pytest.raises(InputError, match="the conversion is wrong"):
        pretrained.check_predictions(model, "lite0", lite0[0])


def test_a_source_tensor_without_counterpart_is_an_input_error():
    model = timm.create_model("tf_efficientnet_lite0")
    with pytest.raises(InputError, match="no counterpart"):
        pretrained.convert({"_se_reduce.weight": torch.zeros(1)}, model)
    with pytest.raises(InputError, match="shape"):
        pretrained.convert({"_conv_stem.weight": torch.zeros(8, 3, 3, 3)}, model)


def test_real_photos_are_gowns(lite0, shared_dir):
    """Two of the three real photos are classed gown, the issue's check of the converted weights."""
    model = timm.create_model("tf_efficientnet_lite0")
    model.load_state_dict(torch.load(lite0[0], weights_only=True))
    model.eval()
    transform = create_transform(**resolve_data_config({}, model=model))
    tops = []
    for photo in sorted((shared_dir / "data" / "real_photos").glob("*.jpg")):
        with Image.open(photo) as image, torch.no_grad():
            tops.append(int(model(transform(image.convert("RGB"))[None]).argmax()))
    assert len(tops) == 3 and tops.count(GOWN) == 2


@pytest.mark.parametrize("config, changes, part", [
    ("attribute_mask_rcnn_regnetx002.yaml", {"backbone": "tf_efficientnet_lite0"}, "backbone.body"),
    ("fashionformer_regnetx002.yaml", {"backbone": "tf_efficientnet_lite0", "mask_stride": 4}, "encoder.body"),
    ("effdet_mask_d0_small.yaml", {"effdet_name": "tf_efficientdet_lite0", "backbone": None, "image_size": 256},
     "detector.backbone"),
])
def test_lite0_file_initialises_every_family(lite0, capsys, config, changes, part):
    path, _ = lite0
    model = create_model(dataclasses.replace(load_config(CONFIGS / config), init=str(path), **changes))
    out = capsys.readouterr().out
    assert f"loaded 240 of the model's 240 tensors in {part}" in out  # batch norms frozen: no num_batches_tracked
    assert "skipped 7 not in the model (e.g. conv_head.weight)" in out  # the classifier's head
    state = torch.load(path, weights_only=True)
    body = dict(model.named_modules())[part].state_dict()
    assert all(torch.equal(body[k], state[k]) for k in body if not k.endswith("num_batches_tracked"))


def test_the_stage_writes_the_same_bytes_every_time(lite0, tmp_path):
    """The file's hash is in every run key that starts from it: a rerun of the stage retrains nothing."""
    path = tmp_path / "again.pth"
    params = tmp_path / "params.yaml"
    params.write_text(f"weights:\n  variant: lite0\n  out: {path}\n")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["weights", "--params", str(params)]) == 0
    assert path.read_bytes() == lite0[0].read_bytes()

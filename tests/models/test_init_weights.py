"""`init`: public checkpoints in their own layouts (names and shapes, random values) land in every family.

Each test writes a small checkpoint built from the public library's own model (timm, torchvision,
effdet) with random weights, loads it through `create_model` and compares every tensor that should
land; the class-specific layers keep the model's initialisation.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import timm
import torch
from effdet import EfficientDet
from torch import nn
from torchvision.models import resnet18
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads
from torchvision.models.detection.rpn import RPNHead

from pipeline.errors import InputError
from pipeline.models.config import portable
from pipeline.typed import to_mapping
from pipeline.models.effdet_mask.model import effdet_config
from pipeline.models.factory import build_family, config_from_mapping, create_model, load_config
from pipeline.models.init_weights import unflattened
from pipeline.training import checkpoint

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CLASS_SPECIFIC = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.")


def rcnn_config(**changes):
    """The shipped R18 Mask R-CNN at torchvision's head sizes (FPN 256, box head 1024, mask head 4 x 256)."""
    return dataclasses.replace(load_config(CONFIGS / "attribute_mask_rcnn_r18.yaml"), fpn_channels=256,
                               box_representation_size=1024, mask_head_channels=256, mask_head_layers=4,
                               attribute_hidden_size=32, min_size=128, max_size=160, **changes)


def fashionformer_config(**changes):
    return dataclasses.replace(load_config(CONFIGS / "fashionformer_r18.yaml"), min_size=128, max_size=160,
                               hidden_dim=32, num_queries=10, num_stages=1, ffn_dim=64, **changes)


def effdet_mask_config(**changes):
    return dataclasses.replace(load_config(CONFIGS / "effdet_mask_d0_small.yaml"), image_size=128, **changes)


def torchvision_maskrcnn_r18(version: int) -> nn.Module:
    """torchvision's maskrcnn_resnet50_fpn (1) or _v2 (2) as its builders make them, on a ResNet-18 for speed."""
    torch.manual_seed(version)
    if version == 1:
        from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

        return MaskRCNN(resnet_fpn_backbone(backbone_name="resnet18", weights=None), num_classes=91)
    backbone = _resnet_fpn_extractor(resnet18(norm_layer=nn.BatchNorm2d), 5, norm_layer=nn.BatchNorm2d)
    return MaskRCNN(
        backbone, num_classes=91,
        rpn_head=RPNHead(256, 3, conv_depth=2),
        box_head=FastRCNNConvFCHead((256, 7, 7), [256, 256, 256, 256], [1024], norm_layer=nn.BatchNorm2d),
        mask_head=MaskRCNNHeads(256, [256, 256, 256, 256], 1, norm_layer=nn.BatchNorm2d),
    )


def released_v1_names(state: dict) -> dict:
    """The names torchvision's COCO maskrcnn_resnet50_fpn file was saved with (before its module renames)."""
    renamed = {}
    for key, value in state.items():
        key = re.sub(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.0\.", r"\1.", key)
        key = re.sub(r"^rpn\.head\.conv\.0\.0\.", "rpn.head.conv.", key)
        old = re.match(r"^roi_heads\.mask_head\.(\d+)\.0\.(.*)$", key)
        renamed[f"roi_heads.mask_head.mask_fcn{int(old[1]) + 1}.{old[2]}" if old else key] = value
    return renamed


def tensors(module_or_state) -> dict:
    state = module_or_state if isinstance(module_or_state, dict) else module_or_state.state_dict()
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def assert_landed(model_state: dict, file_state: dict, pairs: dict) -> None:
    """`pairs`: model key -> file key; each model tensor equals the file's."""
    assert pairs
    for model_key, file_key in pairs.items():
        assert torch.equal(model_state[model_key], file_state[file_key]), model_key


def built(config, path: Path, capsys) -> tuple[nn.Module, str]:
    torch.manual_seed(123)
    model = create_model(dataclasses.replace(config, init=str(path)))
    return model, capsys.readouterr().out


def test_torchvision_maskrcnn_file_with_its_released_names_fills_attribute_mask_rcnn(tmp_path, capsys):
    source = tensors(torchvision_maskrcnn_r18(1))
    path = tmp_path / "maskrcnn.pth"
    torch.save(released_v1_names(source), path)
    assert "rpn.head.conv.weight" in torch.load(path) and "roi_heads.mask_head.mask_fcn4.weight" in torch.load(path)
    model, out = built(rcnn_config(), path, capsys)
    state = tensors(model)
    assert_landed(state, source, {k: k for k in source if not k.startswith(CLASS_SPECIFIC)})
    # The class-specific predictors (91 COCO classes against 47) keep the initialisation of an unloaded model.
    torch.manual_seed(123)
    fresh = tensors(build_family(rcnn_config(freeze_backbone_norm=True)))
    reinitialised = [k for k in state if k.startswith(CLASS_SPECIFIC) or ".attribute_head." in k]
    assert len(reinitialised) == 10
    assert all(torch.equal(state[k], fresh[k]) for k in reinitialised)
    assert set(state) == set(source) | set(reinitialised)
    assert f"loaded {len(source) - 6} of the model's {len(state)} tensors in the whole model" in out
    assert "skipped 6 of another shape" in out and out.count("\n") == 1


def test_torchvision_maskrcnn_fills_fashionformer_backbone_and_fpn(tmp_path, capsys):
    source = tensors(torchvision_maskrcnn_r18(1))
    path = tmp_path / "maskrcnn.pth"
    torch.save(source, path)
    model, out = built(fashionformer_config(fpn_channels=256), path, capsys)
    state = tensors(model)
    parts = ("backbone.body.", "backbone.fpn.")
    pairs = {k.replace("backbone.", "encoder.", 1): k for k in source if k.startswith(parts)}
    assert_landed(state, source, pairs)
    assert pairs.keys() == {k for k in state if k.startswith(("encoder.body.", "encoder.fpn."))}
    assert "with no place in the model (e.g. rpn.head" in out


def test_torchvision_maskrcnn_v2_gives_its_backbone(tmp_path, capsys):
    source = tensors(torchvision_maskrcnn_r18(2))
    path = tmp_path / "maskrcnn_v2.pth"
    torch.save(source, path)
    for config, prefix in ((rcnn_config(), "backbone.body."), (fashionformer_config(), "encoder.body.")):
        model, out = built(config, path, capsys)
        state = tensors(model)
        pairs = {prefix + k[len("backbone.body."):]: k for k in source if k.startswith("backbone.body.")}
        assert_landed(state, source, pairs)
        assert pairs.keys() == {k for k in state if k.startswith(prefix)}
        assert "(torchvision_maskrcnn_v2)" in out


@pytest.mark.parametrize("effdet_name", ["tf_efficientdet_d0", "efficientdet_d0"])
def test_effdet_coco_file_fills_the_detector_but_the_class_layer(tmp_path, capsys, effdet_name):
    config = effdet_mask_config(effdet_name=effdet_name, backbone=None)
    torch.manual_seed(0)
    coco = EfficientDet(effdet_config(dataclasses.replace(config, num_classes=90)), pretrained_backbone=False)
    source = tensors(coco)
    path = tmp_path / "effdet.pth"
    torch.save(source, path)
    model, out = built(config, path, capsys)
    state = tensors(model)
    # The last layer's pointwise conv holds the 90 COCO classes; its depthwise conv is class-free and loads.
    class_layer = [k for k in source if k.startswith("class_net.predict.conv_pw.")]
    assert len(class_layer) == 2 and "(effdet)" in out and "skipped 2 of another shape" in out
    assert_landed(state, source, {"detector." + k: k for k in source if k not in class_layer})
    assert {"detector." + k for k in source} == {k for k in state if k.startswith("detector.")}
    assert state["detector.class_net.predict.conv_pw.weight"].shape[0] == 9 * 46


@pytest.mark.parametrize("backbone", ["convnext_atto", "swin_tiny_patch4_window7_224", "resnet18"])
def test_timm_imagenet_file_fills_renamed_features_only_backbones(tmp_path, capsys, backbone):
    torch.manual_seed(0)
    source = tensors(timm.create_model(backbone))
    path = tmp_path / "imagenet.pth"
    torch.save(source, path)
    model, out = built(fashionformer_config(backbone=backbone, mask_stride=4), path, capsys)
    body = tensors(model.encoder.body)
    assert any(k != unflattened(k) for k in body) == (backbone != "resnet18")  # features_only renamed modules
    assert_landed(body, source, {k: unflattened(k) for k in body})
    assert "(timm)" in out and f"loaded {len(body)} of the model's {len(body)} tensors in encoder.body" in out


def test_checkpoint_of_a_layout_for_another_family_is_an_input_error(tmp_path):
    path = tmp_path / "effdet.pth"
    torch.save({"class_net.predict.conv_pw.bias": torch.zeros(3)}, path)
    with pytest.raises(InputError, match="init_layout effdet has nothing for family fashionformer"):
        create_model(fashionformer_config(init=str(path)))
    torch.save(tensors(timm.create_model("resnet18")), path)
    with pytest.raises(InputError, match="only 0 of the model's .* tensors in detector load"):
        create_model(effdet_mask_config(init=str(path), init_layout="effdet"))


@pytest.mark.parametrize("line, message", [("init_layout: detectron", "init_layout must be one of"),
                                           ("init_min_match: 90", "init_min_match must be a share")])
def test_bad_init_keys_are_input_errors(tmp_path, line, message):
    path = tmp_path / "model.yaml"
    path.write_text(f"family: fashionformer\ninit: weights.pth\n{line}\n")
    with pytest.raises(InputError, match=message):
        load_config(path)


def test_model_file_rebuilds_without_the_init_file(tmp_path, capsys):
    """model.pt's config is portable: the init file may be gone, the same network loads strictly."""
    torch.manual_seed(0)
    init = tmp_path / "imagenet.pth"
    torch.save(timm.create_model("resnet18").state_dict(), init)
    config = rcnn_config(init=str(init))
    model = create_model(config)
    checkpoint.save(tmp_path / "model.pt", model=model.state_dict(), config=to_mapping(portable(config)))
    init.unlink()
    saved = checkpoint.load(tmp_path / "model.pt")
    rebuilt = create_model(config_from_mapping(saved["config"], tmp_path / "model.pt"))
    rebuilt.load_state_dict(saved["model"], strict=True)
    assert saved["config"]["init"] is None and saved["config"]["freeze_backbone_norm"] is True
    assert all(torch.equal(v, rebuilt.state_dict()[k]) for k, v in model.state_dict().items())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in rebuilt.backbone.body.modules())

"""The recipe knobs of the real-data profile: lr scaled with the global batch, the backbone's lr
multiplier, step milestones, the crop side from the model config, FashionFormer's BCE mask loss."""
import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import write_tiny_project
from pipeline.cli import main
from pipeline.models.factory import load_config
from pipeline.models.fashionformer.loss import FashionFormerLoss, LossWeights
from pipeline.models.fashionformer.matcher import mask_cost
from pipeline.training import data, engine
from pipeline.training import train as training_runs
from pipeline.training.config import TrainConfig, training_augment
from pipeline.training.data import TrainDataset
from pipeline.training.config import AugmentConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_lr_is_for_the_reference_batch_and_scales_linearly_with_the_global_batch():
    cfg = TrainConfig(lr=0.02, lr_reference_batch=16, batch_size=2, accumulate=2)
    assert cfg.global_batch(world=4) == 16 and cfg.scaled_lr(world=4) == pytest.approx(0.02)
    assert cfg.scaled_lr(world=1) == pytest.approx(0.005)
    assert dataclasses.replace(cfg, lr_reference_batch=0).scaled_lr(world=1) == 0.02


class Family(nn.Module):
    """A model with a family's backbone prefix (FashionFormer's `encoder.body.`) and a head."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(family="fashionformer")
        self.encoder = nn.Module()
        self.encoder.body = nn.Linear(3, 3)
        self.head = nn.Linear(3, 2)


def test_optimizer_gives_the_backbone_its_multiplier_and_the_scaled_lr():
    model = Family()
    cfg = TrainConfig(optimizer="sgd", lr=0.04, lr_reference_batch=8, batch_size=2, backbone_lr_multiplier=0.25,
                      weight_decay=1e-4)
    optimizer = engine.build_optimizer(model, cfg, world=2)  # global batch 4: lr 0.02
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    decay_of = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert lr_of[id(model.head.weight)] == pytest.approx(0.02) and lr_of[id(model.head.bias)] == pytest.approx(0.02)
    assert lr_of[id(model.encoder.body.weight)] == pytest.approx(0.005)
    assert decay_of[id(model.encoder.body.weight)] == 1e-4 and decay_of[id(model.encoder.body.bias)] == 0.0
    assert len(lr_of) == 4


def test_step_schedule_drops_at_its_milestones_by_its_factor():
    cfg = TrainConfig(warmup_steps=0, schedule="step", step_milestones=(0.2, 0.6), step_factor=0.5)
    assert [engine.lr_factor(s, 10, 0, cfg) for s in (0, 1, 2, 5, 6, 9)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    default = TrainConfig(warmup_steps=0, schedule="step")
    assert [engine.lr_factor(s, 90, 0, default) for s in (59, 60, 80)] == pytest.approx([1, 0.1, 0.01])
    with pytest.raises(ValueError, match="step_milestones"):
        TrainConfig(step_milestones=(0.8, 0.4))


def test_weight_knobs_hold_the_new_knobs_where_they_matter():
    knobs = TrainConfig(schedule="step", lr_reference_batch=16, backbone_lr_multiplier=0.1).weight_knobs()
    assert knobs["lr_reference_batch"] == 16 and knobs["backbone_lr_multiplier"] == 0.1
    assert "step_milestones" in knobs and "step_milestones" not in TrainConfig(schedule="cosine").weight_knobs()


@pytest.mark.parametrize("name, side", [
    ("attribute_mask_rcnn_r50.yaml", 800), ("fashionformer_regnetx002.yaml", 256), ("effdet_mask_d1.yaml", 640),
    ("real/attribute_mask_rcnn_r50.yaml", 1024), ("real/effdet_mask_d2.yaml", 512)])
def test_a_null_crop_side_comes_from_the_model_config(name, side):
    config = load_config(CONFIGS / name)
    assert config.crop_side == side
    cfg = TrainConfig(augment=AugmentConfig(image_size=None))
    assert training_augment(cfg, config.crop_side).image_size == side
    assert training_augment(TrainConfig(augment=AugmentConfig(image_size=320)), config.crop_side).image_size == 320


def test_fashionformer_bce_mask_loss_and_its_matching_cost():
    torch.manual_seed(0)
    logits, truth = torch.randn(3, 50), (torch.rand(3, 50) > 0.5).float()
    pairs = logits[:, None].expand(3, 3, 50), truth[None].expand(3, 3, 50)
    expected = F.binary_cross_entropy_with_logits(*pairs, reduction="none")
    assert torch.allclose(mask_cost(logits, truth, kind="bce"), expected.mean(-1), atol=1e-6)
    loss = FashionFormerLoss(LossWeights(mask=1.0, mask_kind="bce"))
    matches = [(torch.arange(3), torch.arange(3))]
    as_maps = logits.view(1, 3, 5, 10)  # the loss takes (B, N, H, W) mask logits, targets flattened
    pixel, _ = loss._masks(as_maps, matches, [{"masks": truth}])
    bce = F.binary_cross_entropy_with_logits(logits, truth, reduction="none").mean(1).sum()
    assert pixel.item() == pytest.approx(bce.item())
    focal, _ = FashionFormerLoss(LossWeights(mask=1.0))._masks(as_maps, matches, [{"masks": truth}])
    assert focal.item() < pixel.item()  # focal down-weights the easy pixels
    with pytest.raises(ValueError, match="mask_loss"):
        dataclasses.replace(load_config(CONFIGS / "fashionformer_r18.yaml"), mask_loss="l2")



class RecordingDataset(TrainDataset):
    """The training dataset, noting the size of every image it hands out."""

    sides = []

    def __getitem__(self, position: int):
        image, target = super().__getitem__(position)
        RecordingDataset.sides.append(tuple(image.shape[-2:]))
        return image, target


def test_train_crops_at_the_model_configs_side_when_image_size_is_null(tmp_path, monkeypatch):
    augment = {"image_size": None, "scale_min": 0.5, "scale_max": 2.0, "hflip": 0.5, "color_jitter": 0.0,
               "min_instance_pixels": 4}
    params = write_tiny_project(tmp_path, train_images=4, test_images=1, image_size=160,
                                model_config={"min_size": 96, "max_size": 128}, train={"augment": augment})
    monkeypatch.setattr(training_runs, "TrainDataset", RecordingDataset)
    RecordingDataset.sides.clear()
    assert main(["--params", str(params), "train", "--model", "attribute_mask_rcnn", "--fold", "0",
                 "--out-dir", str(tmp_path / "run"), "--max-steps", "1", "--no-progress"]) == 0
    assert RecordingDataset.sides and set(RecordingDataset.sides) == {(96, 96)}  # min(min_size, max_size)

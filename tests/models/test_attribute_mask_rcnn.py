"""Attribute-Mask R-CNN: the family-neutral model interface, its attribute branch, weights, configs."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import timm
import torch
from torchvision.models.detection.roi_heads import project_masks_on_boxes
from torchvision.ops import sigmoid_focal_loss

from family import (
    assert_bad_config_is_an_input_error, assert_state_dict_round_trips, attribute_losses_by_kind,
    shipped_config_parameters,
)
from overfit import overfit_and_score
from pipeline.data import ontology
from pipeline.errors import InputError
from pipeline.models.backbones import TimmFPN
from pipeline.models.attribute_mask_rcnn.transform import SubpixelMaskTransform, letterbox_placement
from pipeline.models.factory import create_model, load_config
from pipeline.models.losses import attribute_loss

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NUM_ATTRIBUTES = ontology.load().num_attributes
LOSS_KEYS = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg", "loss_attributes"}


@pytest.fixture(scope="module")
def tiny_config():
    """The shipped R18 config at test image sizes."""
    return dataclasses.replace(load_config(CONFIGS / "attribute_mask_rcnn_r18.yaml"), min_size=128, max_size=160)


def scene(height, width, shapes, seed=0):
    """A grey image with filled rectangles / ellipses.

    `shapes`: (kind, rgb, (x0, y0, x1, y1), label, attribute indices) per instance.
    """
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(0.5, 0.03, (height, width, 3)), 0, 1).astype(np.float32)
    masks, boxes, attributes = [], [], []
    for kind, rgb, (x0, y0, x1, y1), _, attribute_indices in shapes:
        mask = np.zeros((height, width), np.uint8)
        if kind == "rect":
            cv2.rectangle(mask, (x0, y0), (x1 - 1, y1 - 1), 1, -1)
        else:
            cv2.ellipse(mask, (((x0 + x1) / 2, (y0 + y1) / 2), (x1 - x0, y1 - y0), 0), 1, -1)
        image[mask > 0] = rgb
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        masks.append(mask)
        vector = np.zeros(NUM_ATTRIBUTES, np.float32)
        vector[attribute_indices] = 1
        attributes.append(vector)
    target = {
        "boxes": torch.tensor(boxes, dtype=torch.float32),
        "labels": torch.tensor([s[3] for s in shapes], dtype=torch.int64),
        "masks": torch.from_numpy(np.stack(masks)),
        "attributes": torch.from_numpy(np.stack(attributes)),
        "has_attributes": torch.tensor([len(s[4]) > 0 for s in shapes]),
    }
    return torch.from_numpy(image).permute(2, 0, 1), target


def two_scenes():
    """Two non-square images of different sizes; one instance per image has no attributes."""
    return tuple(zip(
        scene(128, 160, [("rect", (0.9, 0.1, 0.1), (12, 16, 64, 96), 0, [1, 5]),
                         ("ellipse", (0.1, 0.2, 0.9), (76, 25, 153, 85), 1, [2])], seed=0),
        scene(160, 128, [("rect", (0.1, 0.8, 0.2), (21, 64, 102, 140), 2, [5, 9]),
                         ("ellipse", (0.9, 0.9, 0.1), (25, 12, 76, 51), 45, [])], seed=1),
    ))


def train_losses(model, images, targets):
    model.train()
    return model(list(images), list(targets))


def test_training_returns_finite_losses_including_attributes_and_backpropagates(tiny_config):
    torch.manual_seed(0)
    model = create_model(tiny_config)
    images, targets = two_scenes()
    losses = train_losses(model, images, targets)
    assert set(losses) == LOSS_KEYS
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    assert losses["loss_attributes"] > 0
    sum(losses.values()).backward()
    assert model.roi_heads.attribute_head.logits.weight.grad.abs().sum() > 0
    assert model.backbone.body.conv1.weight.grad.abs().sum() > 0


def test_inference_outputs_per_image_at_input_size(tiny_config):
    torch.manual_seed(0)
    # Score threshold 0: an untrained model's class scores are ~1/47, and the shapes need detections.
    model = create_model(dataclasses.replace(tiny_config, score_threshold=0.0, detections_per_image=20)).eval()
    sizes = [(120, 176), (150, 100)]
    with torch.no_grad():
        outputs = model([torch.rand(3, h, w) for h, w in sizes])
    assert len(outputs) == 2
    for out, (h, w) in zip(outputs, sizes):
        n = len(out["boxes"])
        assert 0 < n <= 20
        assert out["boxes"].shape == (n, 4) and out["boxes"].dtype == torch.float32
        assert (out["boxes"][:, 2:] <= torch.tensor([w, h])).all() and (out["boxes"] >= 0).all()
        assert out["labels"].dtype == torch.int64
        assert out["labels"].min() >= 0 and out["labels"].max() <= 45
        assert out["scores"].shape == (n,) and ((out["scores"] >= 0) & (out["scores"] <= 1)).all()
        assert out["masks"].shape == (n, 1, h, w) and out["masks"].dtype == torch.float32
        assert out["masks"].min() >= 0 and out["masks"].max() <= 1
        assert out["attributes"].shape == (n, NUM_ATTRIBUTES)
        assert out["attributes"].min() >= 0 and out["attributes"].max() <= 1


def test_letterboxed_inference_outputs_at_input_size(tiny_config):
    torch.manual_seed(0)
    config = dataclasses.replace(tiny_config, score_threshold=0.0, detections_per_image=20, letterbox=160)
    model = create_model(config).eval()
    sizes = [(120, 176), (150, 100)]
    with torch.no_grad():
        outputs = model([torch.rand(3, h, w) for h, w in sizes])
    for out, (h, w) in zip(outputs, sizes):
        n = len(out["boxes"])
        assert 0 < n <= 20 and out["masks"].shape == (n, 1, h, w)
        assert (out["boxes"][:, 2:] <= torch.tensor([w, h]) + 1e-3).all() and (out["boxes"] >= -1e-3).all()


@pytest.mark.parametrize("letterbox", [0, 96])
@pytest.mark.parametrize("size", [(37, 29), (50, 71)])
def test_masks_survive_resizing_targets_and_pasting(size, letterbox):
    """Ground truth -> resized target -> torchvision's M x M mask target -> pasted back: the same mask.

    Small instances are the test: torchvision's nearest-neighbour resizing and whole-pixel paste
    shift edges by up to a pixel, which costs ~0.1 mask IoU on ~200 px garments.
    """
    height, width = size
    mask = np.zeros(size, np.uint8)
    cv2.ellipse(mask, ((width * 0.45, height * 0.55), (width * 0.5, height * 0.3), 20), 1, -1)
    cv2.rectangle(mask, (3, 4), (9, 13), 1, -1)
    ys, xs = np.nonzero(mask)
    target = {"boxes": torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32),
              "labels": torch.tensor([1]), "masks": torch.from_numpy(mask)[None]}
    transform = SubpixelMaskTransform(96, 128, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], letterbox)
    images, (resized,) = transform([torch.rand(3, height, width)], [target])
    if letterbox:
        (h, w), (top, left) = letterbox_placement(size, letterbox)
        assert images.image_sizes == [(letterbox, letterbox)]
        assert resized["masks"][0, :top].sum() == 0 and resized["masks"][0, :, :left].sum() == 0
    mask_target = project_masks_on_boxes(resized["masks"], resized["boxes"], torch.tensor([0]), 56)
    transform.eval()
    detections = [{"boxes": resized["boxes"], "masks": mask_target[:, None], "labels": torch.tensor([1]),
                   "scores": torch.ones(1)}]
    (out,) = transform.postprocess(detections, images.image_sizes, [size])
    assert torch.allclose(out["boxes"], target["boxes"], atol=1e-3)
    pasted = out["masks"][0, 0].numpy() > 0.5
    assert (pasted & (mask > 0)).sum() / (pasted | (mask > 0)).sum() > 0.97


def test_attribute_loss_uses_only_ground_truth_with_attributes(tiny_config):
    images, targets = two_scenes()
    torch.manual_seed(0)
    model = create_model(tiny_config)
    garbage = [{**t, "attributes": torch.where(t["has_attributes"][:, None], t["attributes"], 1.0)} for t in targets]
    values = []
    for batch in (targets, garbage):
        torch.manual_seed(1)  # same sampled RoIs
        values.append(train_losses(model, images, batch)["loss_attributes"].item())
    assert values[0] > 0 and values[0] == values[1]

    unannotated = [{**t, "has_attributes": torch.zeros_like(t["has_attributes"]),
                    "attributes": torch.ones_like(t["attributes"])} for t in targets]
    losses = train_losses(model, images, unannotated)
    assert losses["loss_attributes"].item() == 0.0
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()

    empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64),
             "masks": torch.zeros((0, 128, 160), dtype=torch.uint8),
             "attributes": torch.zeros((0, NUM_ATTRIBUTES)), "has_attributes": torch.zeros(0, dtype=torch.bool)}
    losses = train_losses(model, images[:1], [empty])
    assert losses["loss_attributes"].item() == 0.0
    assert all(torch.isfinite(v) for v in losses.values())


def test_focal_and_bce_losses_sum_over_attributes_and_average_over_rois():
    torch.manual_seed(0)
    logits = torch.randn(5, NUM_ATTRIBUTES)
    targets = (torch.rand(5, NUM_ATTRIBUTES) < 0.05).float()
    focal = attribute_loss(logits, targets, "focal", alpha=0.25, gamma=2.0)
    assert torch.isclose(focal, sigmoid_focal_loss(logits, targets, 0.25, 2.0, reduction="sum") / 5)
    bce = attribute_loss(logits, targets, "bce")
    assert torch.isclose(bce, torch.nn.functional.binary_cross_entropy_with_logits(logits, targets) * NUM_ATTRIBUTES)
    assert focal < bce  # focal down-weights the many easy negatives
    none = attribute_loss(torch.zeros((0, NUM_ATTRIBUTES), requires_grad=True), torch.zeros((0, NUM_ATTRIBUTES)))
    assert none.item() == 0.0 and none.requires_grad
    with pytest.raises(ValueError):
        attribute_loss(logits, targets, "hinge")


def test_model_uses_the_configured_attribute_loss(tiny_config):
    values = attribute_losses_by_kind(tiny_config, train_losses, *two_scenes())
    assert 0 < values["focal"] < values["bce"]


def test_backbone_loads_a_local_weights_file(tmp_path, tiny_config):
    torch.manual_seed(0)
    classifier = timm.create_model("resnet18")  # a stand-in for ImageNet weights: random, but known
    path = tmp_path / "resnet18.pth"
    torch.save(classifier.state_dict(), path)

    model = create_model(dataclasses.replace(tiny_config, init=str(path)))
    body = model.backbone.body.state_dict()
    expected = classifier.state_dict()
    for key in ("conv1.weight", "layer4.1.conv2.weight", "layer2.0.bn1.running_var"):
        assert torch.equal(body[key], expected[key])
    # Pretrained batch norms stay frozen, as in torchvision's detectors.
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.body.modules())

    random_init = TimmFPN("resnet18", 64)
    assert not torch.equal(random_init.body.state_dict()["conv1.weight"], expected["conv1.weight"])


@pytest.mark.parametrize(
    "backbone, file_backbone, message",
    [
        ("resnet18", "resnet34", "only 100 of the checkpoint's 182 tensors for backbone.body load"),  # would half-load: refused
        ("resnet34", "resnet18", "only 100 of the model's 180 tensors in backbone.body load"),
        ("resnet18", None, "not a readable state dict"),
    ],
)
def test_init_files_that_do_not_fit_are_input_errors(tmp_path, tiny_config, backbone, file_backbone, message):
    path = tmp_path / "weights.pth"
    if file_backbone is None:
        path.write_text("not a checkpoint")
    else:
        torch.save(timm.create_model(file_backbone).state_dict(), path)
    config = dataclasses.replace(tiny_config, backbone=backbone, init=str(path))
    with pytest.raises(InputError, match=message) as error:
        create_model(config)
    assert error.value.path == str(path)
    with pytest.raises(InputError, match="not found"):
        create_model(dataclasses.replace(config, init=str(tmp_path / "missing.pth")))


def test_state_dict_round_trips_through_weights_only_load(tmp_path, tiny_config):
    assert_state_dict_round_trips(tmp_path, tiny_config)


def test_shipped_configs_load_and_build():
    r18, r50 = shipped_config_parameters([CONFIGS / "attribute_mask_rcnn_r18.yaml", CONFIGS / "attribute_mask_rcnn_r50.yaml"])
    assert r18 < r50


@pytest.mark.parametrize(
    "text, message, line",
    [
        ("family: attribute_mask_rcnn\nmin_size: 128\nwidth: 3\n", "unknown config key 'width'", 3),
        ("family: attribute_mask_rcnn\nmin_size: big\n", "min_size: expected int", 2),
        ("family: attribute_mask_rcnn\nanchor_sizes: 16\n", "anchor_sizes: expected a list", 2),
        ("family: yolo\n", "unknown model family 'yolo'", 1),
        ("family: attribute_mask_rcnn\nattribute_loss: hinge\n", "attribute_loss must be one of", 2),
    ],
)
def test_bad_config_is_an_input_error_with_line(tmp_path, text, message, line):
    assert_bad_config_is_an_input_error(tmp_path, text, message, line)


def test_overfits_two_images_in_40_steps(tiny_config):
    """Masks, classes and attributes of 4 instances are learnt in 40 AdamW steps at 128-160 px.

    The learning rate decays linearly to 0: at a constant rate the scores still wobble around
    0.5 at this point. Passed for seeds 0..11 with 1 thread (about 10 s of CPU).
    """
    steps = 40
    torch.manual_seed(0)
    model = create_model(tiny_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    images, targets = two_scenes()
    for _ in range(steps):
        loss = sum(train_losses(model, images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()

    model.eval()
    with torch.no_grad():
        outputs = model(list(images))
    for out, target in zip(outputs, targets):
        for j, label in enumerate(target["labels"]):
            of_class = torch.where(out["labels"] == label)[0]
            assert len(of_class), f"class {label} not detected"
            top = of_class[out["scores"][of_class].argmax()]
            assert out["scores"][top] > 0.5
            predicted, truth = out["masks"][top, 0] > 0.5, target["masks"][j] > 0
            assert (predicted & truth).sum() / (predicted | truth).sum() > 0.5
            if target["has_attributes"][j]:
                expected = target["attributes"][j] > 0
                assert torch.equal(out["attributes"][top] > tiny_config.attribute_threshold, expected)


@pytest.mark.slow  # minutes on 2 cores: make test-slow (CI runs it after make test)
def test_overfits_tiny_set(tmp_path):
    """The project's standard for every family, through its engine, predict code and evaluator.

    Overrides: 384 px throughout, letterboxed inference (the training crops' centred layout) and
    28 px mask RoIs (56 px masks). Measured on seed 0 with 1 thread, 200 steps, lr 2e-3 (first with the ResNet-18 config):
    - torchvision's transform (nearest-resized targets, whole-pixel paste), no letterbox, 300 steps:
      0.537 / 0.415 (600 steps 0.542 / 0.472). The same network scored on centred black canvases
      as in training: 0.80; the bare images or the top left corner: 0.53.
    - letterbox + exact mask resize/paste: 0.665 / 0.573 in 192 s.
    - and LongestMaxSize with mask_interpolation=cv2.INTER_LINEAR in the training pipeline:
      0.777 / 0.649 in 185 s (shoes 0.77 -> 0.92).
    - the same with the embedded run's RegNetX-200MF backbone (drilled here since): 0.825 / 0.785 in 130 s.
    """
    start = time.perf_counter()
    metrics = overfit_and_score(tmp_path, "attribute_mask_rcnn", CONFIGS / "attribute_mask_rcnn_regnetx002.yaml",
                                {"min_size": 384, "max_size": 384, "letterbox": 384, "mask_roi_size": 28},
                                steps=200, lr=2e-3, image_size=384)
    print(f"attribute_mask_rcnn overfit: ap_iou {metrics['ap_iou']:.3f}, ap_iou_f1 {metrics['ap_iou_f1']:.3f} "
          f"in {time.perf_counter() - start:.0f} s")
    assert metrics["ap_iou"] >= 0.7
    assert metrics["ap_iou_f1"] >= 0.5

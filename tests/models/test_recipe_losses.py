"""The attribute loss normalised as the official FashionFormer code does, in every family, and
FashionFormer's Xavier initialisation of its decoder stages (the official code's init_weights)."""
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from conftest import embedded_config
from pipeline.models.factory import create_model
from pipeline.models.fashionformer.loss import FashionFormerLoss, LossWeights
from pipeline.models.fashionformer.model import FashionFormer, FashionFormerConfig
from pipeline.models.losses import attribute_loss

ATTRIBUTE_FAMILIES = ["attribute_mask_rcnn", "effdet_mask", "fashionformer"]


def logits_and_targets(rows: int = 5, attributes: int = 294):
    torch.manual_seed(0)
    return torch.randn(rows, attributes), (torch.rand(rows, attributes) < 0.05).float()


def test_elements_is_the_official_mean_of_the_sigmoid_cross_entropy():
    logits, targets = logits_and_targets()
    # the official code: CrossEntropyLoss(use_sigmoid=True, loss_weight=2.0) with MMDetection's 'mean'
    official = 2.0 * F.binary_cross_entropy_with_logits(logits, targets)
    assert (2.0 * attribute_loss(logits, targets, "bce", normalisation="elements")).item() == pytest.approx(
        official.item(), rel=1e-6)
    rows = attribute_loss(logits, targets, "bce")  # summed over the 294 attributes of a row
    assert rows.item() == pytest.approx(294 * official.item() / 2, rel=1e-6)
    focal = attribute_loss(logits, targets, "focal", normalisation="elements")
    assert focal.item() == pytest.approx(sigmoid_focal_loss(logits, targets, reduction="mean").item(), rel=1e-6)
    empty = attribute_loss(logits[:0], targets[:0], "bce", normalisation="elements")
    assert empty.item() == 0
    with pytest.raises(ValueError, match="normalisation"):
        attribute_loss(logits, targets, "bce", normalisation="sum")


def scene():
    images = [torch.rand(3, 200, 160), torch.rand(3, 180, 240)]
    masks = torch.zeros(2, 200, 160, dtype=torch.uint8)
    masks[0, 20:120, 30:100] = 1
    masks[1, 130:190, 40:150] = 1
    attributes = torch.zeros(2, 294)
    attributes[0, [3, 40, 200]] = 1
    attributes[1, [7]] = 1
    target = {"boxes": torch.tensor([[30.0, 20.0, 100.0, 120.0], [40.0, 130.0, 150.0, 190.0]]),
              "labels": torch.tensor([1, 33]), "masks": masks, "attributes": attributes,
              "has_attributes": torch.tensor([True, True])}
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
             "masks": torch.zeros(0, 180, 240, dtype=torch.uint8), "attributes": torch.zeros(0, 294),
             "has_attributes": torch.zeros(0, dtype=torch.bool)}
    return images, [target, empty]


@pytest.mark.parametrize("family", ATTRIBUTE_FAMILIES)
def test_every_family_passes_its_normalisation_to_the_attribute_loss(family):
    config = embedded_config(family)
    images, targets = scene()
    values = {}
    for normalisation in ("rows", "elements"):
        torch.manual_seed(0)
        model = create_model(dataclasses.replace(config, attribute_normalisation=normalisation)).train()
        torch.manual_seed(1)  # the same random draws in training (Mask R-CNN's proposal sampling)
        values[normalisation] = model(images, targets)["loss_attributes"].item()
    assert values["elements"] > 0
    assert values["rows"] == pytest.approx(config.num_attributes * values["elements"], rel=1e-4)


def test_fashionformer_attribute_term_is_the_official_one_on_the_matched_queries():
    logits, targets = logits_and_targets(rows=6)
    loss = FashionFormerLoss(LossWeights(attributes=2.0, attribute_kind="bce", attribute_normalisation="elements"))
    matches = [(torch.tensor([4, 1, 2]), torch.tensor([0, 1, 2]))]
    wanted = {"attributes": targets[:3], "has_attributes": torch.tensor([True, True, True])}
    term = loss.weights.attributes * loss._attributes(logits[None], matches, [wanted])
    official = 2.0 * F.binary_cross_entropy_with_logits(logits[[4, 1, 2]], targets[:3])
    assert term.item() == pytest.approx(official.item(), rel=1e-6)


def test_xavier_init_sets_every_stage_weight_matrix_as_the_official_init_weights():
    config = FashionFormerConfig(backbone="resnet18", num_stages=2, hidden_dim=64, fpn_channels=64, ffn_dim=256,
                                 num_queries=20, mlr_modulation=True)
    torch.manual_seed(0)
    default = FashionFormer(config)
    torch.manual_seed(0)
    xavier = FashionFormer(dataclasses.replace(config, xavier_init=True))
    stages = [*xavier.decoder.segmentation, *xavier.decoder.attributes]
    matrices = [(name, p) for stage in stages for name, p in stage.named_parameters() if p.dim() == 2]
    assert matrices
    for name, weight in matrices:
        fan_out, fan_in = weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))
        if name.startswith("rendering.modulate"):
            assert not weight.any()  # no counterpart in the official code: starts at zero either way
        else:
            assert weight.abs().max() <= bound
            assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.15)
    # biases (the class and attribute priors), norms, the initial kernels and the encoder keep theirs
    kept = {n: p for n, p in default.named_parameters() if p.dim() < 2 or not n.startswith(
        ("decoder.segmentation", "decoder.attributes"))}
    assert all(torch.equal(p, kept[n]) for n, p in xavier.named_parameters() if n in kept)
    ffn = xavier.decoder.segmentation[0].ffn.layers[0].weight
    assert not torch.equal(ffn, default.decoder.segmentation[0].ffn.layers[0].weight)

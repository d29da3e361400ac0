"""Every model file in configs/ builds, and the embedded run's models (and their CPU alternatives) take a
training step and predict.

The overfit tests drill one config per family; the embedded run's models are shown to learn by
`make repro`'s cross-validation report. This keeps every file loadable and those models runnable.
Models are built from `portable` configs: an `init` (the `weights` stage's output or a named start) is not read.
"""
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.models.config import portable
from pipeline.models.factory import create_model, load_config
from pipeline.models.starts import named_start

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
EMBEDDED = sorted({entry["config"] for entry in PARAMS["models"].values()})
# CPU configs a params file can put in the embedded run's place (the decoder comparisons in the README).
ALTERNATIVES = ["configs/fashionformer_mla_regnetx002.yaml", "configs/fashionformer_mla_lite0.yaml"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_builds(path):
    config = load_config(path)
    assert path.stem.startswith(config.family)
    # A shipped config starts from what the DAG writes or from a published checkpoint the DAG fetches.
    assert config.init in (None, PARAMS["weights"]["out"]) or named_start(config.init) is not None
    assert sum(p.numel() for p in create_model(portable(config)).parameters()) > 0


@pytest.mark.parametrize("name", EMBEDDED + ALTERNATIVES)
def test_embedded_models_train_a_step_and_predict(name):
    torch.manual_seed(0)
    model = create_model(portable(load_config(ROOT / name)))
    images = [torch.rand(3, 200, 160), torch.rand(3, 180, 240)]
    masks = torch.zeros(2, 200, 160, dtype=torch.uint8)
    masks[0, 20:120, 30:100] = 1
    masks[1, 130:190, 40:150] = 1
    target = {"boxes": torch.tensor([[30.0, 20.0, 100.0, 120.0], [40.0, 130.0, 150.0, 190.0]]),
              "labels": torch.tensor([1, 33]), "masks": masks,
              "attributes": torch.zeros(2, 294), "has_attributes": torch.tensor([True, False])}
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
             "masks": torch.zeros(0, 180, 240, dtype=torch.uint8), "attributes": torch.zeros(0, 294),
             "has_attributes": torch.zeros(0, dtype=torch.bool)}
    model.train()
    losses = model(images, [target, empty])
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        outputs = model(images)
    for output, image in zip(outputs, images):
        assert output["masks"].shape[-2:] == image.shape[-2:]
        assert len(output["boxes"]) == len(output["scores"]) == len(output["labels"]) == len(output["masks"])


# Where each family keeps the (mean, std) it normalises images with.
NORMALISATION = {
    "attribute_mask_rcnn": lambda m: (m.transform.image_mean, m.transform.image_std),
    "effdet_mask": lambda m: (m.letterbox.mean.flatten().tolist(), m.letterbox.std.flatten().tolist()),
    "fashionformer": lambda m: (m.mean.flatten().tolist(), m.std.flatten().tolist()),
    "match_rcnn": lambda m: (m.transform.image_mean, m.transform.image_std),
}


@pytest.mark.parametrize("name", ["attribute_mask_rcnn_lite0", "effdet_mask_d0_lite0", "fashionformer_lite0",
                                  "attribute_mask_rcnn_regnetx002", "match_rcnn_lite0", "match_rcnn_lite0_192"])
def test_images_are_normalised_as_the_backbone_was_pretrained(name):
    config = portable(load_config(ROOT / "configs" / f"{name}.yaml"))
    mean, std = NORMALISATION[config.family](create_model(config))
    expected = (0.5,) * 3 if "lite0" in name else (0.485, 0.456, 0.406)  # timm's tf_efficientnet_lite0, regnetx_002
    assert mean == pytest.approx(expected)
    assert std == pytest.approx((0.5,) * 3 if "lite0" in name else (0.229, 0.224, 0.225))

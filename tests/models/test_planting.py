"""Planted starts (`pipeline.models.planting`) behave like trained checkpoints where a rehearsal needs them to."""
from pathlib import Path

import pytest
import torch

from pipeline.benchmarks.gpu import scenes, smoke_config
from pipeline.data import ontology
from pipeline.models import planting
from pipeline.models.factory import create_model, load_config
from pipeline.training.config import AugmentConfig
from pipeline.training.data import TrainDataset, collate

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", ["real/attribute_mask_rcnn_r50.yaml", "real/fashionformer_r50.yaml",
                                  "real/effdet_mask_d2.yaml"])
def test_a_planted_start_keeps_a_detectors_first_losses_in_range(offline, path):
    """Batch norm statistics drawn for the planted tensors: a network on a planted start trains from losses
    of the size an untrained head gives (the classifier's about 4-15), not the hundreds that overflowed
    into NaN at 1024 px and skipped a rehearsal's backward pass."""
    config = smoke_config(load_config(CONFIGS / path), 256, planted=True)
    planting.plant(config.init)
    torch.manual_seed(0)
    model = create_model(config).train()
    labels = ontology.load()
    data = TrainDataset(scenes(2, 256, 0, labels), range(2), labels, AugmentConfig(config.crop_side, 1.0, 1.0), 0)
    losses = model(*collate([data[0], data[1]]))
    classifier = next(value for name, value in losses.items() if "class" in name)
    assert all(torch.isfinite(value) for value in losses.values()) and float(classifier) < 30, losses
    assert offline == []

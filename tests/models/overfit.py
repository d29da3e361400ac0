"""Overfit drill shared by the model families' tests: can the model learn a few images by heart?

Trains with the project's engine on all images of a tiny synthetic set (no augmentation), predicts
the same images with the project's predict code and scores them with the project's evaluator.
"""
from pathlib import Path

import torch

from conftest import write_tiny_project
from pipeline.data import ontology
from pipeline.data.annotations import read_annotations
from pipeline.data.cache_reader import CacheReader
from pipeline.scoring.evaluator import evaluate_frames
from pipeline.inference.predict import predict
from pipeline.models.factory import create_model, load_config
from pipeline.training import engine
from pipeline.settings.load import load_settings
from pipeline.training.data import TrainDataset

NO_AUGMENTATION = {"scale_min": 1.0, "scale_max": 1.0, "hflip": 0.0, "color_jitter": 0.0}


def overfit_and_score(root: Path, model: str, config: Path, model_config: dict, steps: int, lr: float,
                      images: int = 2, image_size: int = 384, seed: int = 0) -> dict:
    """Train `steps` steps on `images` synthetic images (one batch), return the evaluator's metrics."""
    params = write_tiny_project(
        root, images, 1, seed=seed, image_size=image_size, model=model, config=config, model_config=model_config,
        train={"epochs": steps, "batch_size": images, "lr": lr, "warmup_steps": 5, "checkpoint_every": steps,
               "augment": {"image_size": image_size, **NO_AUGMENTATION}},
    )
    entry = load_settings(params).model(model)
    reader = CacheReader(root / "cache" / "train.h5")
    labels = ontology.load()
    dataset = TrainDataset(reader, range(len(reader)), labels, entry.train.augment, entry.train.seed)
    config = load_config(entry.config)
    torch.manual_seed(0)
    net = create_model(config)
    engine.train(net, dataset, entry.train, root / "run", run_key="overfit drill", progress=False)  # a fresh folder
    frame = predict(net.eval(), reader, range(len(reader)), labels, config.attribute_threshold)
    records, _ = read_annotations(root / "data" / "train.csv", labels)
    return evaluate_frames(records, frame, labels)


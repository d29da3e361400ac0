"""Match R-CNN's overfit drill: can it learn a few synthetic DeepFashion2-like images by heart?

Builds a tiny DF2-like set (`synth-df2`), caches it (`cache-df2`), trains with the project's engine
on all its images (no augmentation), predicts the same images and scores the official result
files with the project's DeepFashion2 evaluator: box, mask and landmark AP and retrieval top-k,
the retrieval ground truth made from the same annotations as the official layout has it.
"""
import dataclasses
from pathlib import Path

import torch

from conftest import tiny_df2
from pipeline import io
from pipeline.data.deepfashion2.cache import Df2CacheReader
from pipeline.evaluation.deepfashion2.evaluate import evaluate_detection, evaluate_retrieval
from pipeline.inference.deepfashion2.predict import detection_results, predict_items, retrieval_results
from pipeline.models.factory import create_model
from pipeline.training import engine
from pipeline.training.config import TrainConfig
from pipeline.training.deepfashion2 import Df2TrainDataset
from pipeline.training.transforms import AugmentConfig


def overfit_and_score(root: Path, config, steps: int, lr: float, pairs: int = 2, size: int = 256) -> dict:
    """Train `steps` steps on every image of a tiny set in one batch; {task: the evaluator's metrics}."""
    split = tiny_df2(root, pairs, size)
    reader = Df2CacheReader(root / "train.h5")
    augment = AugmentConfig(image_size=size, scale_min=1.0, scale_max=1.0, hflip=0.0, color_jitter=0.0)
    dataset = Df2TrainDataset(reader, range(len(reader)), augment, seed=0, partners=False)
    train = TrainConfig(epochs=steps, batch_size=len(reader), lr=lr, warmup_steps=5, checkpoint_every=steps,
                        workers=0, amp=False, augment=augment)
    torch.manual_seed(0)
    model = create_model(dataclasses.replace(config, letterbox=size, min_size=size, max_size=size))
    engine.train(model, dataset, train, root / "run", run_key="overfit drill", progress=False)
    images = predict_items(model, reader, range(len(reader)))
    results = detection_results(images)
    metrics = {}
    for task, entries in results.items():
        io.write_json(root / f"{task}.json", entries)
        metrics[task] = evaluate_detection(task, split / "annos", root / f"{task}.json")
    io.write_json(root / "retrieval.json", retrieval_results(images, model.similarity_logits, query_threshold=0.5,
                                                             gallery_threshold=0.5))
    metrics["retrieval"] = evaluate_retrieval(root / "query_gt.json", root / "gallery_gt.json",
                                              root / "retrieval.json")
    return metrics

"""Where the DAG's stages put their files: the one place these paths are built.

dvc.yaml spells the same paths out (a DVC file cannot import them); `tests/test_dag.py` checks
that the two agree.
"""
from __future__ import annotations

from pathlib import Path

MODELS = Path("models")
PREDICTIONS = Path("predictions")
REPORTS = Path("reports")
SPLITS = ("oof", "test")
ALL_FOLDS = "all"  # `train --fold all`: every training image, the papers' protocol
ENSEMBLE = "ensemble"


def model_dir(model: str, fold: int | str) -> Path:
    """`train`'s folder for one family and fold: model.pt, train.json, last.pt, runs.jsonl, dvclive/;
    fold `all` (trained on every image): `models/<model>/all`."""
    return MODELS / model / (ALL_FOLDS if fold == ALL_FOLDS else f"fold{fold}")


def model_file(model: str, fold: int | str) -> Path:
    return model_dir(model, fold) / "model.pt"


def df2_model_dir(model: str) -> Path:
    """`train`'s folder for a DeepFashion2 model (`df2.model`), trained on the whole train split."""
    return MODELS / model / "deepfashion2"


def df2_model_file(model: str) -> Path:
    return df2_model_dir(model) / "model.pt"


# predict-df2's gallery index folder, inside df2.predictions beside its result files; retrieve reuses it.
DF2_GALLERY_INDEX = "gallery_index"


def predictions_dir(split: str) -> Path:
    """Every prediction file of a split; for oof, `report` scores each `<model>.csv` in it."""
    return PREDICTIONS / split


def fold_predictions(split: str, model: str, fold: int) -> Path:
    """`predict`'s output: fold `fold`'s model on its held-out images (oof) or on the test images."""
    return predictions_dir(split) / model / f"fold{fold}.csv"


def oof_predictions(model: str) -> Path:
    """`gather`'s output: a family's out-of-fold predictions over all folds."""
    return predictions_dir("oof") / f"{model}.csv"


def ensemble_predictions(split: str) -> Path:
    return predictions_dir(split) / f"{ENSEMBLE}.csv"


def all_predictions(name: str) -> Path:
    """The papers' protocol: the test split (Fashionpedia's val2020) predicted by model `name` trained
    on every image (fold `all`), or by the ensemble of those models (`ENSEMBLE`). A folder of its own:
    the Kaggle DAG's test predictions (`predictions/test/<model>/`) are inputs of its ensemble."""
    return PREDICTIONS / ALL_FOLDS / f"{name}.csv"


def val_metrics(name: str) -> Path:
    """The papers' protocol: the scores of `all_predictions(name)` against the val2020 annotations."""
    return REPORTS / "val2020" / f"{name}.json"

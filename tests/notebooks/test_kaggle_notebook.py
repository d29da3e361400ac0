"""notebooks/kaggle_inference.ipynb runs end to end offline on a tiny Kaggle-layout test set; explore.ipynb runs."""
import base64
import dataclasses

import cv2
import nbformat
import numpy as np
import pandas as pd
import pytest
import timm
import torch
from nbclient import NotebookClient

from conftest import ROOT
from pipeline.data.ontology import load as load_ontology
from pipeline.synthetic.fashionpedia import generate
from pipeline.models.factory import create_model, load_config
from pipeline.submission.images import submission_images
from pipeline.submission.validate import check
from pipeline.training.train import save_model

NOTEBOOK = ROOT / "notebooks" / "kaggle_inference.ipynb"


def execute(notebook_path, parameters: dict, cwd) -> nbformat.NotebookNode:
    """Run a notebook with its `parameters` cell replaced by `parameters` (what papermill does)."""
    notebook = nbformat.read(notebook_path, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def save_random_model(path, seed, backbone_file=None):
    """A random-init R18 Mask R-CNN saved as `train` saves model.pt (scores don't matter here).

    With `backbone_file` its backbone starts from that weights file, deleted once model.pt is
    written: the notebook must run on model.pt alone, as on Kaggle.
    """
    config = dataclasses.replace(load_config(ROOT / "configs" / "attribute_mask_rcnn_r18.yaml"),
                                 score_threshold=0.0, detections_per_image=5)
    if backbone_file is not None:
        torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), backbone_file)
        config = dataclasses.replace(config, init=str(backbone_file), init_layout="timm")
    torch.manual_seed(seed)
    save_model(path, create_model(config), config, key=f"seed {seed}")
    if backbone_file is not None:
        backbone_file.unlink()
    return str(path)


@pytest.fixture(scope="module")
def submission(tmp_path_factory):
    root = tmp_path_factory.mktemp("kaggle")
    data = generate(root / "data", 1, 3, 0, min_size=96, max_size=160, large_fraction=0)
    weights = [save_random_model(root / "model0.pt", 0), save_random_model(root / "model1.pt", 1, root / "r18.pth")]
    notebook = execute(NOTEBOOK, {
        "PACKAGE_DIR": str(ROOT), "WHEELS_DIR": None, "DATA_DIR": str(data),
        "WEIGHTS": {"attribute_mask_rcnn": weights}, "FAMILY_WEIGHTS": {}, "WORK_DIR": str(root / "working"),
        "MAX_SIDE": 128, "CACHE_CODEC": "jpeg", "TTA_HFLIP": True, "TTA_SCALES": [1.0], "TTA_MERGE_IOU": 0.55,
        "SUBMIT_MAX_SIDE": None, "OVERLAP": "smaller_wins", "THRESHOLDS": None,
    }, root)
    return data, root / "working" / "submission.csv", notebook


def test_submission_is_valid_and_covers_every_test_image(submission):
    data, path, _ = submission
    images = submission_images(data)
    report = check(path, images, load_ontology())
    assert not report.problems, report.problems[:3]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert set(frame.ImageId) == set(images) and len(images) == 3


def test_every_stage_ran_and_the_head_is_shown(submission):
    _, _, notebook = submission
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    for command in ("cache --split test", "predict --model attribute_mask_rcnn --fold 1", "ensemble --split test",
                    "submit --predictions", "validate-submission"):
        assert f"$ python -m pipeline {command}" in printed
    # Two fold files of one family: each weighs w / 2, as `ensemble --split test` weighs fold models.
    assert "--weights 0.5 0.5 --out" in printed
    last = notebook.cells[-1].outputs
    assert any("text/html" in o.get("data", {}) and "ImageId" in o["data"]["text/html"] for o in last)


def test_explore_notebook_draws_ground_truth_beside_predictions(tmp_path):
    data = generate(tmp_path / "data", 3, 1, 0, min_size=96, max_size=160, large_fraction=0)
    truth = pd.read_csv(data / "train.csv", dtype=str, keep_default_na=False)
    predictions = truth[["ImageId", "EncodedPixels", "ClassId", "AttributesIds"]].assign(Score="0.9")
    predictions.to_csv(tmp_path / "predictions.csv", index=False)
    notebook = execute(ROOT / "notebooks" / "explore.ipynb", {
        "PROJECT_DIR": str(ROOT), "DATA_DIR": str(data), "PREDICTIONS": str(tmp_path / "predictions.csv"),
        "PREDICTION_SCORE": 0.3, "IMAGES_SHOWN": 2, "SEED": 0}, tmp_path)
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert f"3 images, {len(truth)} instances, 46 categories, 294 attributes" in printed
    figures = [c for c in notebook.cells if any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]
    assert len(figures) == 4
    png = next(o["data"]["image/png"] for o in figures[-1].outputs if "image/png" in o.get("data", {}))
    drawn = cv2.imdecode(np.frombuffer(base64.b64decode(png), np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape[1] > 0.8 * drawn.shape[0]  # 2 images x 2 columns (ground truth, predictions); 1 column: 0.5

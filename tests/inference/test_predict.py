"""predict and gather on a tiny project, and predictions at full size on large real photos."""
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import ROOT, drawn, write_tiny_project
from pipeline.cli import main
from pipeline.data import rle
from pipeline.data.cache_format import CacheConfig
from pipeline.data.cache_build import build_cache
from pipeline.data.folds import read_folds
from pipeline.data.ontology import load as load_ontology
from pipeline.scoring.evaluator import evaluate_frames
from pipeline.inference import predict as predict_module
from pipeline.data.annotations import read_annotations

MODEL = "attribute_mask_rcnn"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny project with both folds trained for 2 steps; detections kept down to score 0.

    Letterbox off (torchvision's resize): with the shipped 256 px letterbox this 2-step model pasted a single
    mask on one large real photo, too few for the full-size paste test below."""
    root = tmp_path_factory.mktemp("predict")
    params = write_tiny_project(root, train_images=6, test_images=2,
                                model_config={"score_threshold": 0.0, "letterbox": 0},
                                train={"epochs": 1, "batch_size": 1, "augment": {"image_size": 128}})
    for fold in (0, 1):
        assert main(["--params", str(params), "train", "--model", MODEL, "--fold", str(fold),
                     "--out-dir", str(root / "models" / MODEL / f"fold{fold}"), "--no-progress"]) == 0
    return root, params


def read(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_oof_predictions_cover_their_fold_and_gather(trained, monkeypatch):
    root, params = trained
    monkeypatch.chdir(root)
    for fold in (0, 1):
        assert main(["--params", str(params), "predict", "--model", MODEL, "--fold", str(fold), "--split", "oof"]) == 0
    assert main(["--params", str(params), "gather", "--model", MODEL]) == 0
    folds = read_folds(root / "cache" / "folds.csv")
    gathered = read(root / "predictions" / "oof" / f"{MODEL}.csv")
    assert list(gathered.columns) == ["ImageId", "EncodedPixels", "ClassId", "AttributesIds", "Score", "AttributeScores"]
    assert gathered.ImageId.tolist() == sorted(gathered.ImageId)
    for fold in (0, 1):
        frame = read(root / "predictions" / "oof" / MODEL / f"fold{fold}.csv")
        assert len(frame) > 0 and {folds[i] for i in frame.ImageId} == {fold}
    assert len(gathered) == sum(len(read(root / "predictions" / "oof" / MODEL / f"fold{f}.csv")) for f in (0, 1))
    # the evaluator accepts them: masks at the original size, valid classes and attributes
    labels = load_ontology()
    records, _ = read_annotations(root / "data" / "train.csv", labels)
    metrics = evaluate_frames(records, gathered.astype({"Score": float, "ClassId": int}), labels)
    assert 0.0 <= metrics["ap_iou"] <= 1.0


def test_predict_gather_and_cache_show_progress_on_a_terminal_unless_told_not_to(trained, monkeypatch, tmp_path):
    root, params = trained
    monkeypatch.chdir(root)
    common = ["--params", str(params)]
    for fold in (0, 1):
        predict = [*common, "predict", "--model", MODEL, "--fold", str(fold), "--split", "oof"]
        assert f"predict fold{fold}.csv:" in drawn(monkeypatch, predict)
        assert drawn(monkeypatch, [*predict, "--no-progress"]) == ""
    gather = [*common, "gather", "--model", MODEL]
    assert f"gather {MODEL}.csv:" in drawn(monkeypatch, gather)
    assert drawn(monkeypatch, [*gather, "--no-progress"]) == ""
    cache = [*common, "cache", "--split", "test", "--out-dir", str(tmp_path)]
    assert "cache test:" in drawn(monkeypatch, cache)
    (tmp_path / "test.h5").unlink()
    assert drawn(monkeypatch, [*cache, "--no-progress"]) == ""


def test_batched_prediction_writes_the_same_file(trained, monkeypatch, tmp_path):
    """Two images per model call (predict.batch_size) on CPU: the same rows as one at a time."""
    root, params = trained
    monkeypatch.chdir(root)
    for batch_size in (1, 2):  # without TTA, which predicts image by image
        predict = {"tta": {"hflip": False, "scales": [1.0]}, "batch_size": batch_size}
        (tmp_path / f"{batch_size}.yaml").write_text(yaml.safe_dump({**yaml.safe_load(params.read_text()),
                                                                      "predict": predict}))
    calls = []  # (images in the model call, plain call without TTA) per call
    outputs = predict_module._outputs

    def counted(model, reader, batch, device, forward):
        calls.append((len(batch), forward is None))
        return outputs(model, reader, batch, device, forward)

    monkeypatch.setattr(predict_module, "_outputs", counted)
    for path, out in ((tmp_path / "1.yaml", "one.csv"), (tmp_path / "2.yaml", "two.csv")):
        assert main(["--params", str(path), "predict", "--model", MODEL, "--fold", "0", "--split", "test",
                     "--out", str(tmp_path / out)]) == 0
    assert calls == [(1, True), (1, True), (2, True)]  # 2 test images: one by one, then both at once
    one, two = read(tmp_path / "one.csv"), read(tmp_path / "two.csv")
    assert len(one) > 0 and one.ImageId.tolist() == sorted(one.ImageId)
    assert two.drop(columns="Score").equals(one.drop(columns="Score"))
    assert (two.Score.astype(float) - one.Score.astype(float)).abs().max() < 1e-4


def test_predict_threads_sets_torch_threads_and_a_bad_value_exits_2(trained, monkeypatch, tmp_path, capsys):
    import torch

    root, params = trained
    monkeypatch.chdir(root)
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    settings = yaml.safe_load(params.read_text())
    for threads, status in ((1, 0), (0, 0), (-1, 2), ("two", 2)):
        path = tmp_path / f"{threads}.yaml"
        path.write_text(yaml.safe_dump({**settings, "predict": {**settings.get("predict", {}), "threads": threads}}))
        assert main(["--params", str(path), "predict", "--model", MODEL, "--fold", "0", "--split", "test",
                     "--out", str(tmp_path / "out.csv")]) == status
    assert calls == [1]  # 0 leaves torch's default
    err = capsys.readouterr().err
    assert "-1.yaml:" in err and "predict: threads must be >= 0, got -1" in err
    assert "predict.threads: expected int, got 'two'" in err


def test_gather_refuses_a_missing_fold(trained, monkeypatch, capsys):
    root, params = trained
    monkeypatch.chdir(root)
    shutil.rmtree(root / "predictions", ignore_errors=True)
    assert main(["--params", str(params), "predict", "--model", MODEL, "--fold", "0", "--split", "oof"]) == 0
    assert main(["--params", str(params), "gather", "--model", MODEL]) == 2
    assert "fold1.csv: prediction file not found" in capsys.readouterr().err


def test_test_predictions_on_large_real_photos(trained, shared_dir, tmp_path):
    """The 3676x5214 photo and friends: a valid CSV at full size with many masks, bounded memory."""
    root, params = trained
    photos = tmp_path / "photos"
    (photos / "test").mkdir(parents=True)
    for photo in (shared_dir / "data" / "real_photos").glob("*.jpg"):
        shutil.copy(photo, photos / "test" / photo.name)
    build_cache(photos, "test", tmp_path / "cache" / "test.h5", CacheConfig(max_size=256))
    settings = yaml.safe_load(params.read_text())
    settings["cache"]["dir"] = str(tmp_path / "cache")
    settings["data"]["root"] = str(photos)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(settings))
    out = tmp_path / "test.csv"
    script = (
        "import resource, sys; from pipeline.cli import main; "
        f"code = main(['--params', '{tmp_path / 'params.yaml'}', 'predict', '--model', '{MODEL}', '--fold', '0', "
        f"'--split', 'test', '--weights', '{root / 'models' / MODEL / 'fold0' / 'model.pt'}', '--out', '{out}']); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    peak_mb = int(result.stdout.split()[-1]) / 1024
    assert peak_mb < 2500, f"peak RSS {peak_mb:.0f} MB"
    frame = read(out)
    sizes = {}
    from PIL import Image

    for photo in (photos / "test").glob("*.jpg"):
        with Image.open(photo) as image:
            sizes[photo.stem] = image.size[::-1]
    assert set(frame.ImageId) == set(sizes)
    assert frame.groupby("ImageId").size().min() >= 20
    for row in frame.itertuples():
        assert rle.decode(row.EncodedPixels, *sizes[row.ImageId]).any()
    assert max(h for h, _ in sizes.values()) == 5214


def test_predict_refuses_a_training_state_file(trained, monkeypatch, capsys):
    """last.pt (optimizer and step, no config) is not a model file: one line, exit 2."""
    from pipeline.training import checkpoint

    root, params = trained
    monkeypatch.chdir(root)
    state = root / "last_like.pt"
    checkpoint.save(state, model={}, step=3)
    assert main(["--params", str(params), "predict", "--model", MODEL, "--fold", "0", "--split", "oof",
                 "--weights", str(state), "--out", str(root / "x.csv")]) == 2
    assert "not a model file written by train" in capsys.readouterr().err
    assert not (root / "x.csv").exists()


def test_gather_follows_train_folds(trained, monkeypatch, capsys):
    """A pipeline that trains fold 0 only (a quick run, a queued per-fold experiment) gathers fold 0."""
    import yaml

    root, params = trained
    monkeypatch.chdir(root)
    one_fold = root / "one_fold.yaml"
    config = yaml.safe_load(params.read_text())
    config["train"]["folds"] = [0]
    one_fold.write_text(yaml.safe_dump(config))
    shutil.rmtree(root / "predictions", ignore_errors=True)
    assert main(["--params", str(one_fold), "predict", "--model", MODEL, "--fold", "0", "--split", "oof"]) == 0
    assert main(["--params", str(one_fold), "gather", "--model", MODEL]) == 0
    assert "from folds [0]" in capsys.readouterr().out
    config["train"]["folds"] = [0, 2]  # folds.k is 2
    one_fold.write_text(yaml.safe_dump(config))
    assert main(["--params", str(one_fold), "gather", "--model", MODEL]) == 2
    assert "train.folds must be fold numbers within 0..1" in capsys.readouterr().err

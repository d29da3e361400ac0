"""Runs a GPU-day can trust: what restarts a run, what resumes it, what a finished run does again,
non-finite steps, and a model.pt that needs no other file."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, write_tiny_project
from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.training import checkpoint, engine
from pipeline.training.config import TrainConfig

# Accumulation and EMA on: the guarantees below hold with them (3 training images, 2 micro-batches
# per step: 2 steps per epoch, the second of one image).
TRAIN = {"epochs": 2, "batch_size": 1, "accumulate": 2, "ema_decay": 0.9, "warmup_steps": 2,
         "augment": {"image_size": 128}}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return write_tiny_project(tmp_path_factory.mktemp("runs"), train_images=6, test_images=2, train=TRAIN)


def train(params, out, *extra, package=ROOT):
    """`python -m pipeline train` in a subprocess, importing the package from `package`."""
    result = subprocess.run([sys.executable, "-m", "pipeline", "--params", str(params), "train", "--model",
                             "attribute_mask_rcnn", "--fold", "0", "--out-dir", str(out), "--no-progress", *extra],
                            cwd=package, capture_output=True, text=True, timeout=600,
                            env={"PATH": "", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(package)})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def runs(out):
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


def changed(project, tmp_path, name="params.yaml", **knobs):
    params = yaml.safe_load(project.read_text())
    params["train"].update(knobs)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(params))
    return path


def snapshot(out):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def straight(project, tmp_path_factory):
    """A run trained in one go."""
    out = tmp_path_factory.mktemp("straight") / "run"
    train(project, out)
    return out


def copy_of(run, tmp_path):
    shutil.copytree(run, tmp_path / "run", copy_function=shutil.copy2)
    return tmp_path / "run"


def test_killed_run_resumes_to_the_same_weights_across_knobs_that_cannot_change_them(project, straight, tmp_path):
    """Stopped inside an epoch, resumed with held-out scoring and kept checkpoints on: the same EMA and
    trained weights as the straight run, the same train.json."""
    resumed = tmp_path / "resumed"
    train(project, resumed, "--max-steps", "1")
    knobs = changed(project, tmp_path, workers=1, log_every=3, checkpoint_every=3, max_bad_steps=4, validate_every=2,
                    validate_images=2, keep_checkpoints=1)
    train(knobs, resumed)
    assert [(r["from_step"], r["to_step"]) for r in runs(resumed)] == [(0, 1), (1, 4)]
    a, b = checkpoint.load(straight / checkpoint.FINAL), checkpoint.load(resumed / checkpoint.FINAL)
    assert a["run_key"] == b["run_key"] and set(a) == {"model", "raw_model", "config", "run_key"}
    for weights in ("model", "raw_model"):
        for name in a[weights]:
            torch.testing.assert_close(a[weights][name], b[weights][name], msg=f"{weights} {name}")
    assert (straight / "train.json").read_bytes() == (resumed / "train.json").read_bytes()
    assert {p.name for p in resumed.glob("*.pt")} == {"last.pt", "model.pt", "best.pt", "step3.pt"}
    assert "ap_iou" in json.loads((resumed / "dvclive" / "metrics.json").read_text())["val"]


def test_a_finished_run_trains_and_writes_nothing_again(project, straight, tmp_path):
    out = copy_of(straight, tmp_path)
    before = snapshot(out)
    printed = train(changed(project, tmp_path, log_every=5), out)
    assert "already trained" in printed and "nothing to do" in printed
    assert snapshot(out) == before  # same bytes, not even rewritten


def test_another_key_sets_the_old_files_aside_and_starts_at_step_0(project, straight, tmp_path):
    out = copy_of(straight, tmp_path)
    old = checkpoint.load(out / checkpoint.FINAL)
    for kept in ("best.pt", "step4.pt"):  # model files as validation and keep_checkpoints leave them
        shutil.copy(out / checkpoint.FINAL, out / kept)
    printed = train(changed(project, tmp_path, lr=0.0005), out, "--max-steps", "1")
    short = old["run_key"][:12]
    assert {p.name for p in out.glob("*.*.pt")} == {f"{name}.{short}.pt" for name in ("last", "model", "best", "step4")}
    assert f"kept as {out / f'last.{short}.pt'}" in printed
    assert not (out / checkpoint.FINAL).exists()  # no stale weights where predict looks
    assert runs(out)[-1]["from_step"] == 0 and checkpoint.load(out / checkpoint.LAST)["step"] == 1
    torch.testing.assert_close(checkpoint.load(out / f"model.{short}.pt")["model"], old["model"])


def test_a_capped_run_ends_on_the_whole_schedule_and_says_so_everywhere(project, straight, tmp_path, capsys,
                                                                        monkeypatch):
    """`train.step_cap` (a rehearsal's): the first step exactly as the full run takes it, model.pt and
    train.json written and marked capped, a run key of its own, a warning where the weights are used."""
    capped = tmp_path / "capped"
    result = subprocess.run([sys.executable, "-m", "pipeline", "--params", str(project), "train", "--model",
                             "attribute_mask_rcnn", "--fold", "0", "--out-dir", str(capped), "--no-progress",
                             "--set", "train.step_cap=1"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={"PATH": "", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "step 1/4 (CAPPED by train.step_cap" in result.stdout and "warning: CAPPED RUN" in result.stderr
    summary = json.loads((capped / "train.json").read_text())
    assert summary["capped"] is True and summary["steps"] == 1 and summary["scheduled_steps"] == 4
    assert summary["run_key"] != json.loads((straight / "train.json").read_text())["run_key"]
    model = checkpoint.load(capped / checkpoint.FINAL)
    assert model["capped"].startswith("1 of 4 steps")
    stopped = tmp_path / "stopped"  # the uncapped run, interrupted after its first step
    train(project, stopped, "--max-steps", "1")
    first = checkpoint.load(stopped / checkpoint.LAST)["model"]
    for name, tensor in first.items():
        torch.testing.assert_close(model["raw_model"][name], tensor, msg=name)
    monkeypatch.chdir(tmp_path)
    assert main(["--params", str(project), "predict", "--model", "attribute_mask_rcnn", "--fold", "0", "--split",
                 "test", "--weights", str(capped / checkpoint.FINAL), "--out", "test.csv"]) == 0
    assert "a rehearsal's weights, not a trained model" in capsys.readouterr().err


def copy_package(tmp_path):
    package = tmp_path / "package"
    shutil.copytree(ROOT / "pipeline", package / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    return package


def test_a_code_change_retrains_from_step_0_and_a_comment_does_not(project, tmp_path):
    """The run key holds the training code's syntax trees: a changed loss restarts, an edited comment resumes."""
    package = copy_package(tmp_path)
    losses = package / "pipeline" / "models" / "losses.py"
    out = tmp_path / "run"
    train(project, out, "--max-steps", "1", package=package)
    losses.write_text(losses.read_text().replace('"""', '"""Edited. ', 1) + "\n# a comment\n")
    train(project, out, "--max-steps", "2", package=package)
    losses.write_text(losses.read_text() + "\nLOSS_SCALE = 2.0\n")
    printed = train(project, out, "--max-steps", "1", package=package)
    assert [r["from_step"] for r in runs(out)] == [0, 1, 0]
    assert "kept as" in printed and len(list(out.glob("last.*.pt"))) == 1


class Scalar(torch.nn.Module):
    """A one-parameter 'detector' whose loss is NaN for images marked bad."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))

    def forward(self, images, targets):
        loss = sum((self.weight * image.mean() - 2) ** 2 for image in images)
        if any(bool(t["bad"]) for t in targets):
            loss = loss * float("nan")
        return {"loss_scalar": loss}


class Images(torch.utils.data.Dataset):
    epoch = 0

    def __init__(self, bad: set[int]):
        self.bad = bad

    def __len__(self):
        return 6

    def __getitem__(self, index):
        return torch.full((3, 4, 4), 1.0 + index / 10), {"bad": torch.tensor(index in self.bad)}


@pytest.mark.parametrize("accumulate", [1, 2])
def test_a_non_finite_batch_is_skipped_without_an_update(tmp_path, monkeypatch, accumulate):
    """Also when the bad image is one micro-batch of an accumulated step: that whole step changes nothing."""
    monkeypatch.setattr(engine, "_live", lambda out_dir, resume: None)
    cfg = TrainConfig(epochs=2, batch_size=1, accumulate=accumulate, workers=0, warmup_steps=0, lr=0.01,
                      schedule="constant", checkpoint_every=1, log_every=1, max_bad_steps=2)
    model = Scalar()
    seen = []
    original = engine.train_step
    monkeypatch.setattr(engine, "train_step", lambda run, group: (
        seen.append((run.model.weight.item(), any(bool(t["bad"]) for _, targets in group for t in targets))),
        original(run, group))[1])
    summary = engine.train(model, Images(bad={3}), cfg, tmp_path, run_key="k", progress=False)
    assert summary["step"] == 12 // accumulate and summary["skipped_steps"] == 2  # once per epoch
    after_bad = [i for i, (_, bad) in enumerate(seen) if bad][0] + 1
    assert seen[after_bad][0] == seen[after_bad - 1][0]  # the NaN step changed no weight
    assert seen[after_bad + 1][0] != seen[after_bad][0]  # and training went on
    assert torch.isfinite(model.weight)
    assert checkpoint.load(tmp_path / checkpoint.LAST)["skipped"] == 2


def test_max_bad_steps_in_a_row_stop_the_run_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "_live", lambda out_dir, resume: None)
    cfg = TrainConfig(epochs=1, batch_size=1, workers=0, warmup_steps=0, max_bad_steps=2, checkpoint_every=100)
    with pytest.raises(InputError, match=r"training stopped at step 2: 2 steps in a row .*loss_scalar nan"):
        engine.train(Scalar(), Images(bad=set(range(6))), cfg, tmp_path, run_key="k", progress=False)


@pytest.fixture(scope="module")
def portable_model(project, tmp_path_factory):
    """A model trained by `train` from an ImageNet-layout `init` file that is then deleted."""
    import timm

    root = tmp_path_factory.mktemp("portable")
    weights = root / "resnet18_imagenet.pth"
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), weights)
    params = yaml.safe_load(project.read_text())
    model_yaml = yaml.safe_load(open(params["models"]["attribute_mask_rcnn"]["config"]))
    model_yaml.update(init=str(weights), init_layout="timm", score_threshold=0.0)
    (root / "model.yaml").write_text(yaml.safe_dump(model_yaml))
    params["models"]["attribute_mask_rcnn"]["config"] = str(root / "model.yaml")
    params["train"]["epochs"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    train(root / "params.yaml", root / "run")
    weights.unlink()
    copied = root / "elsewhere" / "model.pt"
    copied.parent.mkdir()
    shutil.copy(root / "run" / checkpoint.FINAL, copied)
    return root / "params.yaml", copied


def test_a_copied_model_predicts_with_its_init_file_gone(portable_model, tmp_path, monkeypatch):
    params, model = portable_model
    assert checkpoint.load(model)["config"]["init"] is None
    assert checkpoint.load(model)["config"]["freeze_backbone_norm"] is True
    monkeypatch.chdir(tmp_path)
    assert main(["--params", str(params), "predict", "--model", "attribute_mask_rcnn", "--fold", "0", "--split",
                 "test", "--weights", str(model), "--out", "test.csv"]) == 0
    assert (tmp_path / "test.csv").read_text().startswith("ImageId,")
    photo = next((Path(yaml.safe_load(params.read_text())["data"]["root"]) / "test").glob("*.jpg"))
    assert main(["--params", str(params), "infer", str(photo), "--weights", str(model), "--out", "drawn"]) == 0
    assert (tmp_path / "drawn" / f"{photo.stem}.png").exists()


@pytest.mark.parametrize("knob, value, message", [
    ("accumulate", 0, "accumulate must be at least 1"),
    ("amp_dtype", "half", "amp_dtype must be float16 or bfloat16"),
    ("ema_decay", 1.0, r"ema_decay must be in \[0, 1\)"),
    ("keep_checkpoints", -1, "keep_checkpoints must not be negative"),
])
def test_a_bad_training_knob_is_an_input_error_naming_it(tmp_path, knob, value, message):
    import yaml

    from pipeline.settings.load import load_settings

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": {knob: value}, "models": {"m": {"config": "m.yaml"}}}, sort_keys=False))
    with pytest.raises(InputError, match=f"params.yaml:2: train: {message}"):
        load_settings(params)
    params.write_text(yaml.safe_dump({"models": {"m": {"config": "m.yaml", "train": {knob: value}}}}, sort_keys=False))
    with pytest.raises(InputError, match=f"params.yaml:5: {message}"):  # the knob's line in the model's `train`
        load_settings(params)

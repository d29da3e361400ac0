"""The shared training engine: resume after a kill, stale checkpoints, DDP, checkpoint format."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from conftest import ROOT, write_tiny_project
from pipeline.cli import main
from pipeline.training import checkpoint

TRAIN = {"epochs": 3, "batch_size": 1, "warmup_steps": 2, "augment": {"image_size": 128}}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}  # training subprocesses


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine")
    return write_tiny_project(root, train_images=6, test_images=1, train=TRAIN)


def train_command(params, out_dir, model="attribute_mask_rcnn"):
    return [sys.executable, "-m", "pipeline", "--params", str(params), "train", "--model", model,
            "--fold", "0", "--out-dir", str(out_dir), "--no-progress"]


def with_train(project, tmp_path, configs=None, **changes):
    """A copy of the project's params.yaml with `train` knobs changed and `configs` ({model: YAML}) added."""
    params = yaml.safe_load(project.read_text())
    params["train"].update(changes)
    params["models"].update({model: {"config": str(config), "train": {}} for model, config in (configs or {}).items()})
    changed = tmp_path / "params.yaml"
    changed.write_text(yaml.safe_dump(params))
    return changed


def summary(out_dir):
    return json.loads((out_dir / "train.json").read_text())


def runs(out_dir):
    """runs.jsonl: one line per invocation of train (from_step, to_step, seconds...)."""
    return [json.loads(line) for line in (out_dir / "runs.jsonl").read_text().splitlines()]


def test_resume_after_kill_reaches_the_same_weights(project, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(train_command(project, straight), check=True, env=ENV, cwd=ROOT, capture_output=True)

    process = subprocess.Popen(train_command(project, killed), env=ENV, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / checkpoint.LAST).exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / checkpoint.FINAL).exists(), "the run finished before it could be killed"
    subprocess.run(train_command(project, killed), check=True, env=ENV, cwd=ROOT, capture_output=True)

    assert runs(killed)[-1]["from_step"] > 0
    assert summary(killed) == summary(straight)
    a = checkpoint.load(straight / checkpoint.FINAL)["model"]
    b = checkpoint.load(killed / checkpoint.FINAL)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)


def test_checkpoint_of_another_configuration_is_not_resumed(project, tmp_path):
    out = tmp_path / "run"
    assert main(["--params", str(project), "train", "--model", "attribute_mask_rcnn", "--fold", "0",
                 "--out-dir", str(out), "--max-steps", "2", "--no-progress"]) == 0
    assert checkpoint.load(out / checkpoint.LAST)["step"] == 2
    changed = with_train(project, tmp_path, lr=yaml.safe_load(project.read_text())["train"]["lr"] / 3)
    assert main(["--params", str(changed), "train", "--model", "attribute_mask_rcnn", "--fold", "0",
                 "--out-dir", str(out), "--no-progress"]) == 0
    assert runs(out)[-1]["from_step"] == 0


def test_checkpoints_load_weights_only(project, tmp_path):
    out = tmp_path / "run"
    assert main(["--params", str(project), "train", "--model", "attribute_mask_rcnn", "--fold", "1",
                 "--out-dir", str(out), "--no-progress"]) == 0
    final = torch.load(out / checkpoint.FINAL, weights_only=True)
    assert set(final) == {"model", "config", "run_key"} and final["config"]["family"] == "attribute_mask_rcnn"
    last = torch.load(out / checkpoint.LAST, weights_only=True)
    assert last["step"] == summary(out)["steps"] and "optimizer" in last
    assert (out / "dvclive" / "metrics.json").exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"PK\x03\x04 not really a checkpoint")
    from pipeline.errors import InputError

    with pytest.raises(InputError, match="unreadable checkpoint"):
        checkpoint.load(bad)


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="no torchrun")
def test_ddp_with_two_processes(project, tmp_path):
    out = tmp_path / "ddp"
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "pipeline", "--params", str(project), "train",
         "--model", "attribute_mask_rcnn", "--fold", "0", "--out-dir", str(out), "--no-progress"],
        env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    done = summary(out)
    # 3 training images split over 2 ranks -> 2 per rank, batch 1 -> 2 steps per epoch
    assert done["steps"] == 3 * 2
    assert (out / checkpoint.FINAL).exists()


@pytest.mark.parametrize("model", ["attribute_mask_rcnn", "effdet_mask", "fashionformer"])
def test_train_starts_its_own_ddp_processes(project, tmp_path, model):
    """train.processes 2: `train` spawns two ranks itself (gloo on the CPU), as torchrun would.

    Each family with the config `make repro` trains in two processes. DDP runs without
    `find_unused_parameters`: a family whose loss missed a parameter would fail here ("Expected to
    have finished reduction"); with it DDP printed a warning per rank.
    """
    out = tmp_path / "run"
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())["models"][model]["config"]
    command = train_command(with_train(project, tmp_path, {model: ROOT / shipped}, processes=2), out, model)
    result = subprocess.run(command, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr, result.stderr[-3000:]
    assert result.stdout.count(f"{model} fold 0: step 6/6") == 1  # rank 0 reports
    done = summary(out)
    assert done["processes"] == 2 and done["steps"] == 3 * 2  # 3 images over 2 ranks, batch 1
    assert set(checkpoint.load(out / checkpoint.FINAL)) == {"model", "config", "run_key"}


def test_a_bad_input_in_ddp_processes_is_one_line_and_exit_2(project, tmp_path):
    command = train_command(with_train(project, tmp_path, processes=2), tmp_path / "run")
    command[command.index("--fold") + 1] = "7"
    result = subprocess.run(command, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: fold 7 does not exist (folds: [0, 1])"]

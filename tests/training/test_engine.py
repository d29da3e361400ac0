"""The shared training engine: resume after a kill, stale checkpoints, DDP, checkpoint format,
accumulation, EMA, SyncBatchNorm, bfloat16 and channels_last."""
import dataclasses
import json
import math
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
from pipeline.benchmarks.processes import portable_copy
from pipeline.cli import main
from pipeline.training import checkpoint, engine
from pipeline.training.ema import EMA
from pipeline.training.launch import run_distributed
from toy_training import LINEAR, Linear, train_linear, train_linear_rank

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
    """Under torchrun, with accumulation, EMA, held-out scores (rank 0 scores, rank 1 waits) and kept checkpoints."""
    out = tmp_path / "ddp"
    params = with_train(project, tmp_path, accumulate=2, ema_decay=0.9, validate_every=2, validate_images=1,
                        keep_checkpoints=1)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "pipeline", "--params", str(params), "train",
         "--model", "attribute_mask_rcnn", "--fold", "0", "--out-dir", str(out), "--no-progress"],
        env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    done = summary(out)
    # 3 training images split over 2 ranks -> 2 per rank, micro-batches of 1, 2 per step -> 1 step per epoch
    assert done["steps"] == 3 * 1
    assert set(checkpoint.load(out / checkpoint.FINAL)) == {"model", "raw_model", "config", "run_key"}
    assert {p.name for p in out.glob("*.pt")} == {"last.pt", "model.pt", "best.pt", "step2.pt"}  # checkpoint_every 2
    validated = json.loads((out / "dvclive" / "metrics.json").read_text())
    assert set(validated["val"]) == set(validated["val_raw"]) >= {"ap_iou", "ap_iou_f1", "kaggle"}
    assert checkpoint.load(out / engine.BEST)["step"] in (2, 3)  # validated at step 2 and at the end


@pytest.mark.parametrize("model", ["attribute_mask_rcnn", "effdet_mask", "fashionformer"])
def test_train_starts_its_own_ddp_processes(project, tmp_path, model):
    """train.processes 2: `train` spawns two ranks itself (gloo on the CPU), as torchrun would.

    Each family with the config `make repro` trains in two processes. DDP runs without
    `find_unused_parameters`: a family whose loss missed a parameter would fail here ("Expected to
    have finished reduction"); with it DDP printed a warning per rank.
    """
    out = tmp_path / "run"
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())["models"][model]["config"]
    config = portable_copy(ROOT / shipped, tmp_path / "model.yaml")  # no `init` file: a clean clone has none
    command = train_command(with_train(project, tmp_path, {model: config}, processes=2), out, model)
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


def test_accumulation_under_ddp_equals_one_process_with_the_whole_batch(tmp_path):
    """2 processes x 2 micro-batches of 1 (DDP reduces on the last micro-batch only) step as one process
    with batches of 4: the same weights and the same EMA; both ranks end on the same weights."""
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    ddp.mkdir()
    assert run_distributed(train_linear_rank, None, (ddp, LINEAR), 2) == 0
    train_linear((single, dataclasses.replace(LINEAR, batch_size=4, accumulate=1)))

    assert torch.equal(torch.load(ddp / "rank0.pt")["weight"], torch.load(ddp / "rank1.pt")["weight"])
    a, b = checkpoint.load(ddp / checkpoint.FINAL), checkpoint.load(single / checkpoint.FINAL)
    assert checkpoint.load(ddp / checkpoint.LAST)["step"] == checkpoint.load(single / checkpoint.LAST)["step"] == 4
    torch.testing.assert_close(a["raw_model"], b["raw_model"])
    torch.testing.assert_close(a["model"], b["model"])  # the EMA, which predict uses
    assert not torch.allclose(a["model"]["weight"], a["raw_model"]["weight"])
    assert not torch.allclose(a["raw_model"]["weight"], Linear().weight)


def test_ema_follows_the_weights_with_a_warmed_up_decay():
    model = Linear()
    ema = EMA(model, decay=0.99)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model, 1)  # decay min(0.99, 2/11): mostly the new weights after one step
    torch.testing.assert_close(ema.module.weight, start + (1 - 2 / 11))
    assert ema.rate(10_000) == 0.99 and not ema.module.weight.requires_grad


def test_sync_bn_converts_the_trainable_batch_norms_and_keeps_activations_and_frozen_ones():
    from timm.layers import BatchNormAct2d, FrozenBatchNormAct2d, SyncBatchNormAct

    from pipeline.errors import InputError
    from pipeline.models.factory import create_model, load_config

    config = load_config(ROOT / "configs" / "effdet_mask_d0_small.yaml")
    for frozen in (False, True):
        model = create_model(dataclasses.replace(config, freeze_backbone_norm=frozen))
        before = dict(model.named_modules())
        engine.sync_batch_norm(model, torch.device("cuda"))  # conversion only: the device is not used
        after = dict(model.named_modules())
        assert after.keys() == before.keys()
        for name, module in before.items():
            if isinstance(module, BatchNormAct2d):
                assert type(after[name]) is SyncBatchNormAct and type(after[name].act) is type(module.act), name
            elif type(module) is torch.nn.BatchNorm2d:
                assert type(after[name]) is torch.nn.SyncBatchNorm, name
            else:
                assert not isinstance(after[name], torch.nn.SyncBatchNorm), name
        assert sum(isinstance(m, FrozenBatchNormAct2d) for m in after.values()) == (48 if frozen else 0)
        assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in after.values()) == (60 if frozen else 108)
    with pytest.raises(InputError, match="sync_bn needs GPUs"):
        engine.sync_batch_norm(model, torch.device("cpu"))


def test_bfloat16_and_channels_last_train_on_the_cpu(project, tmp_path, monkeypatch):
    dtypes = []
    original = engine.autocast
    monkeypatch.setattr(engine, "autocast", lambda run: dtypes.append(original(run).fast_dtype) or original(run))
    out = tmp_path / "run"
    params = with_train(project, tmp_path, amp_dtype="bfloat16", channels_last=True, epochs=1)
    assert main(["--params", str(params), "train", "--model", "attribute_mask_rcnn", "--fold", "0",
                 "--out-dir", str(out), "--no-progress"]) == 0
    assert dtypes == [torch.bfloat16] * 3
    assert checkpoint.load(out / checkpoint.LAST)["scaler"] == {}  # no grad scaler for bfloat16
    convolutions = [w for w in checkpoint.load(out / checkpoint.FINAL)["model"].values() if w.ndim == 4]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convolutions)
    assert all(math.isfinite(v) for v in summary(out)["final_losses"].values())

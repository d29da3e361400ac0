"""`train` over two nodes: two torchrun launchers on this machine meet at a rendezvous on 127.0.0.1 and
train with gloo, as two machines of a cluster would (docs/training.md, "Several machines")."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, write_tiny_project
from pipeline.training import checkpoint
from pipeline.training.launch import free_port, run_distributed
from toy_training import see_own_data

TORCHRUN = Path(sys.executable).with_name("torchrun")
MODEL = "attribute_mask_rcnn"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    """3 training images of at most 128 px, 2 epochs of batch 1 per process."""
    root = tmp_path_factory.mktemp("nodes")
    return write_tiny_project(root, train_images=6, test_images=1, image_size=128,
                              train={"epochs": 2, "batch_size": 1, "warmup_steps": 1, "threads": 1,
                                     "augment": {"image_size": 128}})


def train_args(params, out_dir) -> list[str]:
    return ["-m", "pipeline", "--params", str(params), "train", "--model", MODEL, "--fold", "0",
            "--out-dir", str(out_dir), "--no-progress"]


def two_nodes(params, out_dir, logs: Path) -> str:
    """Two launchers of one process each, as `srun torchrun ...` starts one per node; their output together."""
    port = free_port()
    command = [str(TORCHRUN), "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
               "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "two-nodes", *train_args(params, out_dir)[1:]]
    logs.mkdir()
    nodes = []
    for node in range(2):
        with open(logs / f"node{node}.out", "w") as out, open(logs / f"node{node}.err", "w") as err:
            nodes.append(subprocess.Popen(command, env=ENV, cwd=ROOT, stdout=out, stderr=err))
    codes = [node.wait(timeout=600) for node in nodes]
    assert codes == [0, 0], "\n".join((logs / f"node{n}.err").read_text()[-3000:] for n in range(2))
    return "".join((logs / f"node{n}.out").read_text() for n in range(2))


def one_node(params, out_dir) -> str:
    """The same global batch on one machine: `train` starts 2 processes itself."""
    command = [sys.executable, *train_args(params, out_dir), "--set", "train.processes=2"]
    result = subprocess.run(command, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.skipif(not TORCHRUN.exists(), reason="no torchrun beside the Python interpreter")
def test_two_nodes_end_on_the_weights_of_one_node_with_the_same_global_batch(params, tmp_path):
    """Exactly, not within a tolerance: both runs are 2 ranks of one thread with the same images per rank
    and step, and an all-reduce over 2 ranks sums each gradient entry once (a + b = b + a), so every
    floating-point operation is the same. Rank 0 alone prints and writes (runs.jsonl has one line)."""
    single, nodes = tmp_path / "one", tmp_path / "two"
    assert one_node(params, single).count(f"{MODEL} fold 0: step 4/4") == 1
    output = two_nodes(params, nodes, tmp_path / "logs")
    assert output.count(f"{MODEL} fold 0: step 4/4") == 1, output

    a, b = checkpoint.load(single / checkpoint.FINAL), checkpoint.load(nodes / checkpoint.FINAL)
    assert a["run_key"] == b["run_key"]  # the key holds the world size: 2 processes either way
    assert a["model"].keys() == b["model"].keys()
    different = [name for name in a["model"] if not torch.equal(a["model"][name], b["model"][name])]
    assert different == []
    summary = json.loads((nodes / "train.json").read_text())
    assert summary["processes"] == 2 and summary == json.loads((single / "train.json").read_text())
    assert len((nodes / "runs.jsonl").read_text().splitlines()) == 1
    assert {p.name for p in nodes.iterdir()} == {"model.pt", "last.pt", "train.json", "runs.jsonl", "dvclive"}

    written = (nodes / checkpoint.FINAL).stat().st_mtime_ns
    again = two_nodes(params, nodes, tmp_path / "again")
    assert again.count("already trained") == 1, again
    assert (nodes / checkpoint.FINAL).stat().st_mtime_ns == written


def test_a_node_that_sees_other_files_stops_every_rank_with_one_line(capfd):
    """Each node reads the cache, folds and run folder from its own disk: one that sees other files
    would train other images or resume another step; every rank stops, rank 0 says why."""
    assert run_distributed(see_own_data, None, None, 2) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert lines == ["error: rank 1 sees the cache cache1.h5 where rank 0 sees cache0.h5: every node needs the "
                     "cache, folds, configs and run folder at the same paths (a shared file system)"]

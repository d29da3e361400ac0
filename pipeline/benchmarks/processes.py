"""Training throughput of one process against `train.processes` DDP processes, side by side.

Each side runs `python -m pipeline train` on the same small synthetic project with the embedded
run's model configs: one process of `--batch-size` images (threads 1, one DataLoader worker, the
layout the embedded run had before) against N processes of `--batch-size / N` images each
(threads 1, no workers), so both sides take optimizer steps of the same number of images. Images
per second come from each run's `runs.jsonl` (the training loop only, not start-up); the sides
take turns `--repeats` times and the best run of each counts. Both sides take the same steps.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from pipeline.cli import main
from pipeline.data.cache_build import build_cache
from pipeline.data.cache_format import CacheConfig
from pipeline.errors import InputError
from pipeline.models.config import portable
from pipeline.models.factory import load_config
from pipeline.synthetic.fashionpedia import generate
from pipeline.typed import to_mapping


def add_arguments(parser) -> None:
    parser.add_argument("--models", nargs="+", help="model names (default: params train.models)")
    parser.add_argument("--processes", type=int, default=2, help="DDP processes of the second side (default: 2)")
    parser.add_argument("--batch-size", type=int, default=2, help="images per optimizer step (default: 2)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run (default: %(default)s)")
    parser.add_argument("--images", type=int, default=16, help="synthetic training images (default: 16)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per side, best kept (default: 2)")


def make_project(root: Path, images: int, params_file: str | None) -> dict:
    """Synthetic data at the embedded run's sizes, its cache and 2 folds; the params pointing at them."""
    settings = yaml.safe_load(Path(params_file).read_text())
    data = generate(root / "data", images, 0, 0, min_size=400, max_size=800, large_fraction=0)
    build_cache(data, "train", root / "cache" / "train.h5", CacheConfig(max_size=settings["cache"]["max_size"]))
    settings["data"]["root"] = str(data)
    settings["cache"]["dir"] = str(root / "cache")
    settings["folds"].update(k=2, out=str(root / "folds.csv"), report=str(root / "folds.json"))
    for name, entry in settings["models"].items():
        entry["config"] = str(portable_copy(entry["config"], root / f"{name}.yaml"))
    (root / "params.yaml").write_text(yaml.safe_dump(settings))
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON result only
        if main(["--params", str(root / "params.yaml"), "folds"]) != 0:
            raise RuntimeError("folds failed")
    return settings


def portable_copy(config_path: str, out: Path) -> Path:
    """The model config without its `init` file: the pretrained values do not change the speed, and
    the bench then runs before the `weights` stage has written the file."""
    out.write_text(yaml.safe_dump(to_mapping(portable(load_config(config_path)))))
    return out


def images_per_second(root: Path, settings: dict, model: str, processes: int, batch: int, epochs: int) -> dict:
    settings["train"].update(processes=processes, batch_size=batch, workers=1 if processes == 1 else 0, threads=1,
                             checkpoint_every=10**6, epochs=epochs)
    settings["models"][model]["train"] = {**settings["models"][model].get("train", {}), "epochs": epochs}
    params_path = root / f"params_{processes}.yaml"
    params_path.write_text(yaml.safe_dump(settings))
    out = root / "runs" / f"{model}_{processes}"
    subprocess.run([sys.executable, "-m", "pipeline", "--params", str(params_path), "train", "--model", model,
                    "--fold", "0", "--out-dir", str(out), "--no-progress"],
                   check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    summary = json.loads((out / "train.json").read_text())
    run = json.loads((out / "runs.jsonl").read_text().splitlines()[-1])
    shutil.rmtree(out)  # the next run starts from scratch
    return {"images_per_s": run["images_per_second"], "steps": summary["steps"]}


def run(args, settings) -> dict:
    if args.batch_size % args.processes:
        raise InputError(f"--batch-size {args.batch_size} is not a multiple of --processes {args.processes}")
    result = {"processes": args.processes, "images_per_step": args.batch_size, "epochs": args.epochs, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        params = make_project(root, args.images, settings.origins.default)
        for model in args.models or settings.train.models:
            best = {1: {"images_per_s": 0.0}, args.processes: {"images_per_s": 0.0}}
            for _ in range(args.repeats):
                for processes in best:
                    measured = images_per_second(root, params, model, processes, args.batch_size // processes, args.epochs)
                    best[processes] = max(best[processes], measured, key=lambda r: r["images_per_s"])
            result["models"][model] = {
                "steps": best[1]["steps"], "one_process_images_per_s": best[1]["images_per_s"],
                f"{args.processes}_processes_images_per_s": best[args.processes]["images_per_s"],
                "speedup": round(best[args.processes]["images_per_s"] / best[1]["images_per_s"], 2)}
    return result

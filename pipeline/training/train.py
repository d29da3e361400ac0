"""Training runs: one model family on one fold's training images (or DeepFashion2's train split).

A run is identified by its key (`run_key`): what changes the weights. A finished run with the same
key trains and writes nothing; a checkpoint of another key is set aside and training starts at step 0.
Its folder holds `model.pt` (final weights and a config that needs no other file), `train.json`
(summary), `last.pt` (resumable), `runs.jsonl` (seconds and speed of each invocation), `dvclive/`,
and with `validate_every` / `keep_checkpoints` `best.pt` and `step<N>.pt` (model files like model.pt).
"""
from __future__ import annotations

import hashlib
import json
import socket
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from pipeline import io
from pipeline.code_version import source_hash
from pipeline.data.cache_format import file_digest
from pipeline.data.deepfashion2.cache import Df2CacheReader
from pipeline.data.ontology import Ontology
from pipeline.models.config import FILE_KEYS, ModelConfig, portable
from pipeline.models.factory import create_model
from pipeline.models.starts import resolve
from pipeline.training import checkpoint, engine
from pipeline.training.config import TRAINING_SOURCE, ModelEntry, training_augment
from pipeline.training.data import TrainDataset
from pipeline.training.deepfashion2 import Df2TrainDataset
from pipeline.typed import to_mapping

RUNS_LOG = "runs.jsonl"
SUMMARY = "train.json"
# The DeepFashion2 reading code, in a DeepFashion2 run's key beside TRAINING_SOURCE (kept out of that one,
# which would change every Fashionpedia run's key).
DF2_SOURCE = ("data/deepfashion2",)


def run_key(model_config, train_config, data: dict, world: int) -> str:
    """Hash of what changes the trained weights: the model config (checkpoints by content), the weight
    knobs, the data (`data`: cache fingerprint, images, label ids), the global batch layout and
    the training source code. Paths, worker counts, logging and checkpoint intervals are not in it.
    """
    model = to_mapping(model_config)
    for key in FILE_KEYS:
        if model[key] is not None:
            model[key] = {"sha256": file_digest(resolve(model[key])[0]).hexdigest()}
    return hashlib.sha256(json.dumps({
        "model": model, "train": train_config.weight_knobs(), "data": data,
        "processes": world,  # the sampler splits an epoch over the processes
        "code": source_hash(TRAINING_SOURCE),
    }, sort_keys=True).encode()).hexdigest()


def stored_key(path: Path) -> str | None:
    """The run key a checkpoint or model file was written with; None when absent."""
    return checkpoint.load(path, mmap=True).get("run_key") if path.exists() else None


def finished(out_dir: Path, key: str) -> bool:
    return stored_key(out_dir / checkpoint.FINAL) == key


def set_aside(out_dir: Path, key: str) -> None:
    """Rename another run's last.pt, model.pt, best.pt and step<N>.pt to `<name>.<their key>.pt`, so
    nothing is overwritten and no file of theirs is mistaken for this run's."""
    steps = sorted(p for p in out_dir.iterdir() if engine.STEP_FILE.fullmatch(p.name))
    for path in [out_dir / checkpoint.LAST, out_dir / checkpoint.FINAL, out_dir / engine.BEST, *steps]:
        old = stored_key(path)
        if not path.exists() or old == key:
            continue
        kept = path.with_name(f"{path.stem}.{(old or 'unkeyed')[:12]}.pt")
        path.replace(kept)
        print(f"{path}: another run's (key {(old or 'none')[:12]}, this run {key[:12]}): kept as {kept}")


@dataclass
class TrainingData:
    """What a family trains on and where its run goes."""

    name: str               # in messages: the model and fold
    out_dir: Path
    identity: dict          # the data's part of the run key
    dataset: object         # a torch Dataset of (image, target) items
    images: int


def fashionpedia_data(name: str, out_dir: Path, reader, indices: list[int], labels: Ontology, entry: ModelEntry,
                      model_config: ModelConfig) -> TrainingData:
    """The cache images `indices` (every fold but the held-out one, or all)."""
    identity = {"cache": str(reader.attributes["fingerprint"]), "images": [reader.image_ids[i] for i in indices],
                "categories": [c.id for c in labels.categories], "attributes": labels.attribute_ids.tolist()}
    augment = training_augment(entry.train, model_config.crop_side)
    return TrainingData(name, out_dir, identity, TrainDataset(reader, indices, labels, augment, entry.train.seed),
                        len(indices))


def deepfashion2_data(name: str, out_dir: Path, cache: Path, entry: ModelEntry,
                      model_config: ModelConfig) -> TrainingData:
    """Every image of a DeepFashion2 cache, consumer-shop pairs together."""
    reader = Df2CacheReader(cache)
    indices = list(range(len(reader)))
    identity = {"cache": str(reader.attributes["fingerprint"]), "images": reader.index["image_id"].tolist(),
                "reader": source_hash(DF2_SOURCE)}
    augment = training_augment(entry.train, model_config.crop_side)
    return TrainingData(name, out_dir, identity, Df2TrainDataset(reader, indices, augment, entry.train.seed),
                        len(indices))


def train_run(entry: ModelEntry, model_config: ModelConfig, data: TrainingData, max_steps: int | None = None,
              progress: bool = True, validate=None, summary_fields: dict | None = None) -> str:
    """Train `entry`'s model on `data` into `data.out_dir` unless its run is finished; a summary line.

    Under DDP (WORLD_SIZE set, on one machine or several) every process calls this; rank 0 writes the
    files, and every rank must see the same data and run folder (checked). `validate` (rank 0's): see
    `engine.train`. `summary_fields` go into train.json (the model's name and fold).
    """
    out_dir = data.out_dir
    rank, world, _ = engine.distributed_setup()
    key = run_key(model_config, entry.train, data.identity, world)
    done = finished(out_dir, key)
    engine.same_on_every_rank((key[:12], done), world, "(run key, finished)")
    if done:
        return f"{data.name}: already trained (run key {key[:12]}), nothing to do -> {out_dir}"
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        set_aside(out_dir, key)
    if world > 1:
        torch.distributed.barrier()  # the other ranks read last.pt only after rank 0 has set it aside
    if entry.train.step_cap is not None and rank == 0:
        print(f"warning: CAPPED RUN: train.step_cap is {entry.train.step_cap}: {data.name} ends after at most "
              f"{entry.train.step_cap} optimizer steps of its schedule; its model files are a rehearsal's, not a "
              "trained model", file=sys.stderr, flush=True)
    if entry.train.threads:
        torch.set_num_threads(entry.train.threads)
    torch.manual_seed(entry.train.seed)  # the same random init in every DDP process
    model = create_model(model_config)
    start = time.perf_counter()
    summary = engine.train(model, data.dataset, entry.train, out_dir, run_key=key, max_steps=max_steps,
                           progress=progress, validate=validate, model_info=model_info(model_config))
    seconds = time.perf_counter() - start
    if rank == 0:
        log_run(out_dir, summary, seconds, entry.train.global_batch(world, engine.images_per_item(data.dataset)))
        if summary["step"] >= summary["end_step"]:
            write_summary(out_dir, key, summary, summary_fields or {}, images=data.images, world=world)
    capped = summary["end_step"] < summary["total_steps"]
    note = " (CAPPED by train.step_cap: a rehearsal, not a trained model)" if capped else ""
    return f"{data.name}: step {summary['step']}/{summary['total_steps']}{note} in {seconds:.0f}s -> {out_dir}"


def model_info(model_config) -> dict:
    """What model files hold beside the weights: a config that builds the model without any other file."""
    return {"config": to_mapping(portable(model_config))}


def save_model(path: Path, model, model_config, key: str) -> None:
    """A model file of `model`'s weights as `train` writes them (model.pt, best.pt, step<N>.pt)."""
    checkpoint.save(path, model=checkpoint.unwrap(model).state_dict(), **model_info(model_config), run_key=key)


def write_summary(out_dir: Path, key: str, summary: dict, fields: dict, images: int, world: int) -> None:
    """train.json (the engine wrote model.pt): only what the run key determines, so identical runs
    write identical files. A run ended by `step_cap` says so first: `capped` and the steps it skipped."""
    capped = {"capped": True, "scheduled_steps": summary["total_steps"]} if summary["end_step"] < summary[
        "total_steps"] else {}
    io.write_json(out_dir / SUMMARY, {
        **fields, **capped, "images": images, "steps": summary["step"], "processes": world,
        "skipped_steps": summary["skipped_steps"], "final_losses": summary["losses"], "run_key": key,
    })


def log_run(out_dir: Path, summary: dict, seconds: float, global_batch: int) -> None:
    """One line per invocation in runs.jsonl: the facts that differ between identical runs."""
    trained = summary["step"] - summary["resumed_from_step"]
    line = {"finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": socket.gethostname(),
            "from_step": summary["resumed_from_step"], "to_step": summary["step"], "seconds": round(seconds, 1),
            "images_per_second": round(trained * global_batch / max(seconds, 1e-9), 2)}
    with open(out_dir / RUNS_LOG, "a") as stream:
        stream.write(json.dumps(line) + "\n")

"""`python -m pipeline train --model NAME --fold K`: train one model family on all folds but K.

The model's YAML (`configs/`) and training knobs come from params.yaml's `models.<NAME>`;
outputs go to `models/<NAME>/fold<K>/` (`pipeline.layout`). A Match R-CNN (`df2.model`) trains on
DeepFashion2's train split instead (`df2.cache_dir`/train.h5), which has no folds, into
`models/<NAME>/deepfashion2/`. Either way the folder holds `model.pt` (final weights and a
config that needs no other file), `train.json` (summary), `last.pt` (resumable), `runs.jsonl`
(seconds and speed of each invocation), `dvclive/`, and with `validate_every` / `keep_checkpoints`
`best.pt` and `step<N>.pt` (model files like model.pt). With `train.processes` > 1 it starts that
many DDP processes itself (one per GPU, or a second CPU core's worth); under `torchrun` it is one of them.

A run is identified by its key (`run_key`): what changes the weights. A finished run with the same
key trains and writes nothing; a checkpoint of another key is set aside and training starts at step 0.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipeline import io, layout, params
from pipeline.errors import InputError

RUNS_LOG = "runs.jsonl"
SUMMARY = "train.json"


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="a model name under params.yaml `models`")
    parser.add_argument("--fold", type=int, help="the validation fold to hold out (not for DeepFashion2)")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (resumable later)")
    parser.add_argument("--out-dir", help="default: models/<model>/fold<K>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_key(model_config, train_config, data: dict, world: int) -> str:
    """Hash of what changes the trained weights: the model config (checkpoints by content), the weight
    knobs, the data (`data`: cache fingerprint, images, label ids), the global batch layout and
    the training source code. Paths, worker counts, logging and checkpoint intervals are not in it.
    """
    from pipeline.code_version import source_hash
    from pipeline.data.cache import file_digest
    from pipeline.models.config import FILE_KEYS, to_mapping
    from pipeline.models.starts import resolve
    from pipeline.training.config import TRAINING_SOURCE

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
    from pipeline.training import checkpoint

    return checkpoint.load(path, mmap=True).get("run_key") if path.exists() else None


def finished(out_dir: Path, key: str) -> bool:
    from pipeline.training import checkpoint

    return stored_key(out_dir / checkpoint.FINAL) == key


def set_aside(out_dir: Path, key: str) -> None:
    """Rename another run's last.pt, model.pt, best.pt and step<N>.pt to `<name>.<their key>.pt`, so
    nothing is overwritten and no file of theirs is mistaken for this run's."""
    from pipeline.training import checkpoint, engine

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
    reader: object
    indices: list


def validation(args, entry, model_config, data: TrainingData):
    """The engine's `validate`: the first `validate_images` held-out images of --fold, scored as predict
    and the evaluator do; None when `validate_every` is 0."""
    import torch

    from pipeline.data import ontology
    from pipeline.data.folds import fold_indices, folds_file, read_folds
    from pipeline.scoring.kaggle_score import kaggle_options
    from pipeline.training.validation import held_out

    if not entry.train.validate_every:
        return None
    if model_config.family in TRAINING_DATA:
        raise InputError(f"train.validate_every: held-out scores are for the Fashionpedia families, not "
                         f"{model_config.family}", args.params)
    reader = data.reader
    indices = fold_indices(reader, read_folds(folds_file(args.params)), args.fold, train=False)
    indices = indices[: entry.train.validate_images or None]
    root = params.data_root(args)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return held_out(reader, indices, root / "train.csv", ontology.load_for_dataset(root),
                    model_config.attribute_threshold, kaggle_options(args), device)


def fashionpedia_data(args, entry, model_config) -> TrainingData:
    """The Kaggle-layout cache's images of every fold but --fold."""
    from pipeline.data import ontology
    from pipeline.data.cache import open_reader
    from pipeline.data.folds import fold_indices, folds_file, read_folds
    from pipeline.training.config import training_augment
    from pipeline.training.data import TrainDataset

    if args.fold is None:
        raise InputError(f"train --model {args.model} needs --fold", args.params)
    reader = open_reader(args, "train")
    indices = fold_indices(reader, read_folds(folds_file(args.params)), args.fold, train=True)
    labels = ontology.load_for_dataset(params.data_root(args))
    identity = {"cache": str(reader.attributes["fingerprint"]), "images": [reader.image_ids[i] for i in indices],
                "categories": [c.id for c in labels.categories], "attributes": labels.attribute_ids.tolist()}
    dataset = TrainDataset(reader, indices, labels, training_augment(entry.train, model_config), entry.train.seed)
    return TrainingData(f"{args.model} fold {args.fold}", Path(args.out_dir or layout.model_dir(args.model, args.fold)),
                        identity, dataset, reader, indices)


def deepfashion2_data(args, entry, model_config) -> TrainingData:
    """Every image of DeepFashion2's train split (`df2.cache_dir`/train.h5), consumer-shop pairs together."""
    from pipeline.code_version import source_hash
    from pipeline.data.deepfashion2_cache import Df2CacheReader
    from pipeline.data.deepfashion2_params import load_df2
    from pipeline.training.config import training_augment
    from pipeline.training.df2_data import Df2TrainDataset

    if args.fold is not None:
        raise InputError(f"{args.model} trains on DeepFashion2's train split, which has no folds: drop --fold",
                         args.params)
    reader = Df2CacheReader(load_df2(params.load(args.params), args.params).cache("train"))
    indices = list(range(len(reader)))
    identity = {"cache": str(reader.attributes["fingerprint"]), "images": reader.index["image_id"].tolist(),
                "reader": source_hash(DF2_SOURCE)}
    dataset = Df2TrainDataset(reader, indices, training_augment(entry.train, model_config), entry.train.seed)
    return TrainingData(f"{args.model} (DeepFashion2)", Path(args.out_dir or layout.df2_model_dir(args.model)),
                        identity, dataset, reader, indices)


# The DeepFashion2 reading code, in a DeepFashion2 run's key beside TRAINING_SOURCE (kept out of that one,
# which would change every Fashionpedia run's key); dvc.yaml's train-df2 stage depends on the same files.
DF2_SOURCE = ("data/deepfashion2_cache.py", "data/deepfashion2.py", "data/deepfashion2_params.py")

# The training data of the families that do not train on the Fashionpedia cache.
TRAINING_DATA = {"match_rcnn": deepfashion2_data}


def run(args) -> int:
    import torch

    from pipeline.models.factory import create_model, load_config
    from pipeline.training import engine
    from pipeline.training.config import model_entry

    settings = params.load(args.params)
    entry = model_entry(settings, args.model, args.params)
    if entry.train.processes > 1 and "WORLD_SIZE" not in os.environ:
        from pipeline.training.launch import run_distributed

        if torch.cuda.is_available() and entry.train.processes > torch.cuda.device_count():
            raise InputError(f"train.processes is {entry.train.processes} but there are "
                             f"{torch.cuda.device_count()} GPUs", args.params)
        return run_distributed(run, args, entry.train.processes)
    model_config = load_config(entry.config)
    data = TRAINING_DATA.get(model_config.family, fashionpedia_data)(args, entry, model_config)
    out_dir = data.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    rank, world, _ = engine.distributed_setup()
    key = run_key(model_config, entry.train, data.identity, world)
    if finished(out_dir, key):
        if rank == 0:
            print(f"{data.name}: already trained (run key {key[:12]}), nothing to do -> {out_dir}")
        return 0
    if rank == 0:
        set_aside(out_dir, key)
    if world > 1:
        torch.distributed.barrier()  # the other ranks read last.pt only after rank 0 has set it aside

    if entry.train.threads:
        torch.set_num_threads(entry.train.threads)
    torch.manual_seed(entry.train.seed)  # the same random init in every DDP process
    model = create_model(model_config)
    validate = validation(args, entry, model_config, data) if rank == 0 else None
    start = time.perf_counter()
    summary = engine.train(model, data.dataset, entry.train, out_dir, run_key=key, max_steps=args.max_steps,
                           progress=not args.no_progress, validate=validate, model_info=model_info(model_config))
    seconds = time.perf_counter() - start
    if rank == 0:
        log_run(out_dir, summary, seconds, entry.train.batch_size * entry.train.accumulate * world)
        if summary["step"] >= summary["total_steps"]:
            write_summary(out_dir, key, summary, args, images=len(data.indices), world=world)
        print(f"{data.name}: step {summary['step']}/{summary['total_steps']} in {seconds:.0f}s -> {out_dir}")
    return 0


def model_info(model_config) -> dict:
    """What model files hold beside the weights: a config that builds the model without any other file."""
    from pipeline.models.config import portable, to_mapping

    return {"config": to_mapping(portable(model_config))}


def save_model(path: Path, model, model_config, key: str) -> None:
    """A model file of `model`'s weights as `train` writes them (model.pt, best.pt, step<N>.pt)."""
    from pipeline.training import checkpoint

    checkpoint.save(path, model=checkpoint.unwrap(model).state_dict(), **model_info(model_config), run_key=key)


def write_summary(out_dir: Path, key: str, summary: dict, args, images: int, world: int) -> None:
    """train.json (the engine wrote model.pt): only what the run key determines, so identical runs
    write identical files."""
    io.write_json(out_dir / SUMMARY, {
        "model": args.model, "fold": args.fold, "images": images, "steps": summary["step"], "processes": world,
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

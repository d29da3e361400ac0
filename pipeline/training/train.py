"""`python -m pipeline train --model NAME --fold K`: train one model family on all folds but K.

The model's YAML (`configs/`) and training knobs come from params.yaml's `models.<NAME>`;
outputs go to `models/<NAME>/fold<K>/`: `last.pt` (resumable), `model.pt` (final weights and
config), `train.json` (summary) and `dvclive/`. With `train.processes` > 1 it starts that many DDP
processes itself (one per GPU, or a second CPU core's worth); under `torchrun` it is one of them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

from pipeline import io, params

DEFAULTS = {"dir": "models"}


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="a model name under params.yaml `models`")
    parser.add_argument("--fold", type=int, required=True, help="the validation fold to hold out")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (resumable later)")
    parser.add_argument("--out-dir", help="default: models/<model>/fold<K>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def fold_indices(reader, folds: dict[str, int], fold: int, train: bool) -> list[int]:
    """Reader indices of the training images (fold != K) or the validation images (fold == K)."""
    from pipeline.errors import InputError

    missing = [image_id for image_id in reader.image_ids if image_id not in folds]
    if missing:
        raise InputError(f"image {missing[0]} of the cache has no fold: rerun python -m pipeline folds", reader.path)
    if fold not in set(folds.values()):
        raise InputError(f"fold {fold} does not exist (folds: {sorted(set(folds.values()))})")
    return [i for i, image_id in enumerate(reader.image_ids) if (folds[image_id] != fold) == train]


def run(args) -> int:
    import torch

    from pipeline.data import ontology
    from pipeline.data.cache import open_reader
    from pipeline.data.folds import folds_file, read_folds
    from pipeline.errors import InputError
    from pipeline.models.config import portable, to_mapping
    from pipeline.models.factory import create_model, load_config
    from pipeline.training import checkpoint, engine
    from pipeline.training.config import model_entry
    from pipeline.training.data import TrainDataset

    settings = params.load(args.params)
    entry = model_entry(settings, args.model, args.params)
    if entry.train.processes > 1 and "WORLD_SIZE" not in os.environ:
        from pipeline.training.launch import run_distributed

        if torch.cuda.is_available() and entry.train.processes > torch.cuda.device_count():
            raise InputError(f"train.processes is {entry.train.processes} but there are "
                             f"{torch.cuda.device_count()} GPUs", args.params)
        return run_distributed(run, args, entry.train.processes)
    model_config = load_config(entry.config)
    out_dir = Path(args.out_dir or Path(DEFAULTS["dir"]) / args.model / f"fold{args.fold}")
    out_dir.mkdir(parents=True, exist_ok=True)

    reader = open_reader(args, "train")
    folds = read_folds(folds_file(args.params))
    indices = fold_indices(reader, folds, args.fold, train=True)
    labels = ontology.load_for_dataset(params.data_root(args))
    dataset = TrainDataset(reader, indices, labels, entry.train.augment, entry.train.seed)

    run_id = hashlib.sha256(json.dumps({
        "model": to_mapping(model_config), "train": dataclasses.asdict(entry.train),
        "cache": str(reader.attributes["fingerprint"]), "images": [reader.image_ids[i] for i in indices],
        "world": int(os.environ.get("WORLD_SIZE", "1")),  # the sampler splits an epoch over the processes
    }, sort_keys=True).encode()).hexdigest()

    if entry.train.threads:
        torch.set_num_threads(entry.train.threads)
    torch.manual_seed(entry.train.seed)  # the same random init in every DDP process
    model = create_model(model_config)
    start = time.perf_counter()
    summary = engine.train(model, dataset, entry.train, out_dir, run_id=run_id, max_steps=args.max_steps,
                           progress=not args.no_progress)
    seconds = time.perf_counter() - start
    rank, world, _ = engine.distributed_setup()
    if rank != 0:
        return 0
    if summary["step"] >= summary["total_steps"]:
        checkpoint.save(out_dir / checkpoint.FINAL, model=checkpoint.unwrap(model).state_dict(),
                        config=to_mapping(portable(model_config)))
        io.write_json(out_dir / "train.json", {
            "model": args.model, "fold": args.fold, "images": len(indices), "steps": summary["step"],
            "resumed_from_step": summary["resumed_from_step"], "seconds_this_run": round(seconds, 1),
            "images_per_second": round(
                (summary["step"] - summary["resumed_from_step"]) * entry.train.batch_size * world / max(seconds, 1e-9),
                2),
            "processes": world,
            "final_losses": summary["losses"],
        })
    print(f"{args.model} fold {args.fold}: step {summary['step']}/{summary['total_steps']} in {seconds:.0f}s"
          f" -> {out_dir}")
    return 0

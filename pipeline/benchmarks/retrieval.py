"""`retrieve`'s ranking at DeepFashion2's size: validation has 12,550 query items and a gallery of
37,183 (DeepFashion2's validation split).

Random embeddings and the similarity of an untrained model of `--config` (default: the DeepFashion2
track's, `df2.config`) stand in for a trained one: the cost of ranking depends only on the sizes. The gallery is written as `retrieve` writes it (a `.npy` file) and ranked through
a read-only memory map, blockwise (`deepfashion2.rank_gallery`); the first queries' top 20 are
checked against ranking their full similarity rows at once.
"""
from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.inference.deepfashion2.predict import RANKS, rank_gallery
from pipeline.models.config import portable
from pipeline.models.factory import create_model, load_config


def add_arguments(parser) -> None:
    parser.add_argument("--gallery", type=int, default=37183, help="gallery items (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=12550, help="query items (default: %(default)s)")
    parser.add_argument("--config", help="the model config whose similarity ranks (default: params df2.config)")
    parser.add_argument("--block", type=int, default=4096, help="gallery rows per matrix product")
    parser.add_argument("--check", type=int, default=200, help="queries checked against a full ranking")
    parser.add_argument("--seed", type=int, default=0)


def run(args, settings) -> dict:
    torch.manual_seed(args.seed)
    config = portable(load_config(args.config or settings.df2.config))
    similarity = create_model(config).eval().similarity_logits
    size = config.embedding_size
    rng = np.random.default_rng(args.seed)
    queries = rng.normal(size=(args.queries, size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "embeddings.npy"
        np.save(path, rng.normal(size=(args.gallery, size)).astype(np.float32))
        gallery = np.load(path, mmap_mode="r")
        start = time.perf_counter()
        ranked = rank_gallery(similarity, queries, gallery, RANKS, args.block)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            full = similarity(torch.from_numpy(queries[: args.check]), torch.from_numpy(np.array(gallery)))
        expected = torch.argsort(full, dim=1, descending=True, stable=True)[:, :RANKS].numpy()
    return {
        "gallery": args.gallery, "queries": args.queries, "config": args.config or settings.df2.config,
        "embedding_size": size, "index_mb": round(args.gallery * size * 4 / 1e6, 1),
        "rank_seconds": round(seconds, 2), "queries_per_second": round(args.queries / seconds, 1),
        "checked_queries_equal_to_full_ranking": bool(np.array_equal(ranked[: args.check], expected)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(),
    }

"""`python -m pipeline cache-df2 --split S`: one DeepFashion2 split (`image/` + `annos/`) in one HDF5 file."""
from __future__ import annotations

from pathlib import Path

SPLITS = ("train", "validation")


def add_arguments(parser) -> None:
    parser.add_argument("--split", choices=SPLITS, help="<df2.root>/<split> into <df2.cache_dir>/<split>.h5")
    parser.add_argument("--root", help="a DeepFashion2 split folder holding image/ and annos/ (instead of --split)")
    parser.add_argument("--out", help="the HDF5 cache file to write (with --root)")
    parser.add_argument("--max-size", dest="df2.cache_max_size", type=int,
                        help="longest image side (default: params df2.cache_max_size)")


def run(settings, args) -> int:
    from pipeline.data.cache_format import CacheConfig
    from pipeline.data.deepfashion2.cache import refresh
    from pipeline.errors import InputError

    if bool(args.split) == bool(args.root) or bool(args.root) != bool(args.out):
        raise InputError("cache-df2 needs --split, or --root with --out")
    root = Path(args.root) if args.root else Path(settings.df2.root) / args.split
    out = Path(args.out) if args.out else settings.df2.cache(args.split)
    # The Fashionpedia cache's codec; DeepFashion2's own longest side.
    config = CacheConfig(settings.df2.cache_max_size, settings.cache.codec, settings.cache.jpeg_quality)
    print(refresh(root, out, config, settings.cache.workers, progress=not args.no_progress))
    return 0

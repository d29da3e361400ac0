"""`python -m pipeline cache`: one HDF5 file per split with images and masks at training resolution."""
from __future__ import annotations

from pipeline.data.cache_format import LAYOUTS, SPLITS  # light: the settings tree imports it anyway


def add_arguments(parser) -> None:
    parser.add_argument("--split", choices=(*SPLITS, "all"), default="all", help="default: %(default)s")
    parser.add_argument("--root", dest="data.root", help="dataset root (default: params data.root)")
    parser.add_argument("--layout", dest="data.layout", choices=LAYOUTS,
                        help="kaggle: train.csv + train/, test/; fashionpedia: instances_attributes_train2020.json "
                             "+ train/, instances_attributes_val2020.json + test/ or val/ (default: params data.layout)")
    parser.add_argument("--out-dir", dest="cache.dir", help="where train.h5 and test.h5 go (default: params cache.dir)")
    parser.add_argument("--max-size", dest="cache.max_size", type=int,
                        help="longest image side (default: params cache.max_size)")
    parser.add_argument("--codec", dest="cache.codec", choices=("raw", "jpeg"),
                        help="image codec (default: params cache.codec)")
    parser.add_argument("--jpeg-quality", dest="cache.jpeg_quality", type=int,
                        help="jpeg codec quality (default: params cache.jpeg_quality)")
    parser.add_argument("--workers", dest="cache.workers", type=int,
                        help="decoding processes, 0 = in this one (default: params cache.workers)")
    parser.add_argument("--on-error", dest="cache.on_error", choices=("raise", "skip"),
                        help="a bad annotation: stop (raise) or leave it out and report it (skip); "
                             "default: params cache.on_error")


def run(settings, args) -> int:
    from pipeline.data.cache_build import refresh
    from pipeline.data.cache_format import cache_path

    for split in SPLITS if args.split == "all" else (args.split,):
        print(refresh(settings.data_root, split, cache_path(settings.cache.dir, split), settings.cache,
                      settings.cache.workers, settings.data.layout, progress=not args.no_progress))
    return 0

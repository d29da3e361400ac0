"""`python -m pipeline synth`: the embedded synthetic Fashionpedia-like dataset, in Kaggle's or Fashionpedia's layout."""
from __future__ import annotations

from pipeline.data.cache_format import LAYOUTS  # light: the settings tree imports it anyway


def add_arguments(parser) -> None:
    parser.add_argument("--out", dest="synth.out", help="output directory, replaced atomically (default: params synth.out)")
    parser.add_argument("--train-images", dest="synth.train_images", type=int, help="number of training images")
    parser.add_argument("--test-images", dest="synth.test_images", type=int, help="number of test images")
    parser.add_argument("--seed", dest="synth.seed", type=int, help="random seed; the same seed gives identical files")
    parser.add_argument("--min-size", dest="synth.min_size", type=int, help="smallest longest side of ordinary images (px)")
    parser.add_argument("--max-size", dest="synth.max_size", type=int, help="largest longest side of ordinary images (px)")
    parser.add_argument("--layout", dest="synth.layout", choices=LAYOUTS,
                        help="kaggle: train.csv, sample_submission.csv; fashionpedia: instances_attributes_"
                             "{train,val}2020.json, the test images annotated as val2020 (default: params synth.layout)")
    parser.add_argument("--large-fraction", dest="synth.large_fraction", type=float,
                        help="share of images with a side over 2000 px")
    parser.add_argument("--real-shaped", dest="synth.real_shaped", action="store_const", const=True,
                        help="shaped like the real set: sizes spread up to --max-size, one figure, all 46 categories")


def run(settings, args) -> int:
    from pipeline.synthetic.fashionpedia import build

    summary = build(settings.synth.out, settings.synth)
    print(f"synth: {summary.train_images} train + {summary.test_images} test images, "
          f"{summary.instances} instances of {summary.classes} classes in {summary.seconds:.1f} s -> {summary.path}")
    return 0

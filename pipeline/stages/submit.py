"""`python -m pipeline submit`: scored test predictions -> Kaggle's submission CSV."""
from __future__ import annotations

from pathlib import Path

from pipeline.submission.config import OVERLAP_POLICIES


def add_arguments(parser) -> None:
    parser.add_argument("--predictions", dest="submit.predictions",
                        help="scored predictions CSV (default: params submit.predictions)")
    parser.add_argument("--out", dest="submit.out", help="submission CSV to write (default: params submit.out)")
    parser.add_argument("--max-side", dest="submit.max_side", type=int,
                        help="encode masks with the image's longest side N, 0 = original size "
                             "(default: params submit.max_side). Unverified: no public source shows that "
                             "Kaggle's 2020 scorer decoded reduced-size masks (the file carries no mask size)")
    parser.add_argument("--overlap", dest="submit.overlap", choices=OVERLAP_POLICIES,
                        help="smaller_wins: a pixel of several masks stays in the smallest (default: params submit.overlap)")
    parser.add_argument("--thresholds", dest="submit.thresholds",
                        help="tune's thresholds JSON (default: params submit.thresholds; null: none)")
    parser.add_argument("--data", "--root", dest="data.root", help="Kaggle-layout dataset root (default: params data.root)")


def run(settings, args) -> int:
    from pipeline.submission.write import write_submission

    submit = settings.submit
    print(write_submission(Path(submit.predictions), settings.data_root, submit, submit.thresholds, submit.out,
                           progress=not args.no_progress))
    return 0

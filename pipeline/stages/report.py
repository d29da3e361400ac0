"""`python -m pipeline report`: cross-validation metrics and plots of every model's out-of-fold predictions."""
from __future__ import annotations

from pathlib import Path

from pipeline.stages.evaluate import add_kaggle_arguments, add_work_arguments


def add_arguments(parser) -> None:
    parser.add_argument("--models", dest="report.models", nargs="+",
                        help="model names (default: params report.models, else every CSV)")
    parser.add_argument("--predictions-dir", dest="report.predictions_dir",
                        help="where <model>.csv are (default: params report.predictions_dir)")
    parser.add_argument("--folds", dest="report.folds", help="folds CSV ImageId,fold (default: params folds.out)")
    parser.add_argument("--gt", dest="report.gt", help="ground truth CSV (default: <data.root>/train.csv)")
    parser.add_argument("--out", dest="report.out", help="metrics JSON (default: params report.out)")
    parser.add_argument("--plots", dest="report.plots", help="plots folder (default: params report.plots)")
    add_kaggle_arguments(parser)
    add_work_arguments(parser, "report")


def run(settings, args) -> int:
    from pipeline.evaluation.report import write_report

    report = settings.report
    gt = Path(report.gt or settings.train_csv())
    lines = write_report(gt, Path(report.folds or settings.folds.out), Path(report.predictions_dir),
                         list(report.models), report.out, Path(report.plots), settings.evaluate.kaggle,
                         report.workers, progress=not args.no_progress)
    print("\n".join(lines))
    return 0

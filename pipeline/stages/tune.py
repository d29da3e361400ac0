"""`python -m pipeline tune`: score and attribute thresholds tuned on out-of-fold predictions."""
from __future__ import annotations

from pathlib import Path

from pipeline.ensembling.config import METRICS
from pipeline.stages.evaluate import add_kaggle_arguments, add_work_arguments


def add_arguments(parser) -> None:
    parser.add_argument("--predictions", dest="tune.predictions", help="OOF predictions CSV (default: params tune.predictions)")
    parser.add_argument("--metric", dest="tune.metric", choices=METRICS,
                        help="metric to maximise (default: params tune.metric)")
    parser.add_argument("--out", dest="tune.out", help="thresholds JSON (default: params tune.out)")
    parser.add_argument("--report", dest="tune.report", help="cross-fitted report JSON (default: params tune.report)")
    parser.add_argument("--gt", dest="tune.gt", help="ground truth CSV (default: <data.root>/train.csv)")
    parser.add_argument("--folds", dest="tune.folds", help="folds CSV ImageId,fold (default: params folds.out)")
    add_kaggle_arguments(parser)
    add_work_arguments(parser, "tune")


def run(settings, args) -> int:
    from pipeline.ensembling.tune import tune_file

    tune = settings.tune
    gt = Path(tune.gt or settings.train_csv())
    print(tune_file(Path(tune.predictions), gt, Path(tune.folds or settings.folds.out), tune, settings.evaluate.kaggle,
                    tune.out, tune.report, progress=not args.no_progress))
    return 0

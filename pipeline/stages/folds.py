"""`python -m pipeline folds`: assign images to multilabel-stratified cross-validation folds."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--root", dest="data.root", help="Kaggle-layout dataset root (default: params data.root)")
    parser.add_argument("--k", dest="folds.k", type=int, help="number of folds (default: params folds.k)")
    parser.add_argument("--seed", dest="folds.seed", type=int, help="shuffling seed (default: params folds.seed)")
    parser.add_argument("--out", dest="folds.out", help="folds CSV (default: params folds.out)")
    parser.add_argument("--report", dest="folds.report", help="class-balance JSON (default: params folds.report)")


def run(settings, args) -> int:
    from pipeline.data.fold_assignment import write_folds

    folds = settings.folds
    print(write_folds(settings.train_csv().parent, folds.k, folds.seed, settings.cache.on_error, folds.out, folds.report))
    return 0

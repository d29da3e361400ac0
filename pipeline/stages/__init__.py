"""The command line's edge: one thin module per command, named as its DVC stage in dvc.yaml.

Each module has `add_arguments(parser)` and `run(settings, args)`: arguments -> settings -> one
library call. A flag that sets a params key has that key's dotted path as its `dest`
(`--max-size` -> `cache.max_size`), so `pipeline.cli` folds it into the settings tree. Library
code is imported inside `run`, so a command's `--help` loads nothing heavy. Commands outside the
DAG (infer, evaluate, evaluate-df2, validate-submission, bench, profile) live here too.
"""

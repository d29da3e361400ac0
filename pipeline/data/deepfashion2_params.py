"""params.yaml's `df2` section: the DeepFashion2 track's files, model and schedule, typed.

DeepFashion2 has its own train and validation sets, so the track has no folds: `train --model
<df2.model>` trains on the train split's cache and `predict-df2` scores the validation split's.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.deepfashion2_synth import Df2SynthConfig
from pipeline.errors import InputError


@dataclass(frozen=True)
class Df2Params:
    root: str = "data/deepfashion2_synthetic"   # synth-df2's output: train/ and validation/ in DF2's layout
    cache_dir: str = "cache/df2"                # cache-df2 of <root>/<split>: <cache_dir>/<split>.h5
    cache_max_size: int = 192                   # longest image side in both caches
    model: str = "match_rcnn"                   # the name `train --model` and models/<name>/ use
    config: str = "configs/match_rcnn_lite0.yaml"
    train: dict = field(default_factory=dict)   # overrides of params.yaml's `train` for this model
    predictions: str = "predictions/df2"        # bbox.json, segm.json, keypoints.json, gallery_index/, retrieval.json
    query_threshold: float = 0.5                # lowest detection score of a query (consumer) item
    gallery_threshold: float = 0.5              # lowest detection score of a gallery (shop) item
    threads: int = 1                            # torch CPU threads of predict-df2 and retrieve; 0: torch's
                                                # default (one per core), many times slower on a busy CPU
    report: str = "reports/df2_metrics.json"
    synth: Df2SynthConfig = field(default_factory=Df2SynthConfig)

    def cache(self, split: str) -> Path:
        """The cache file of `split` (train or validation)."""
        return Path(self.cache_dir) / f"{split}.h5"


def load_df2(settings: dict, path="params.yaml") -> Df2Params:
    """`settings`' (the whole params file's) `df2` section over the defaults; a bad key names itself."""
    values = dict(settings.get("df2") or {})
    synth = values.pop("synth", None) or {}
    checked = {**{k: typed("df2", Df2Params, k, v, path) for k, v in values.items()},
               "synth": Df2SynthConfig(**{k: typed("df2.synth", Df2SynthConfig, k, v, path)
                                          for k, v in synth.items()}).validate(path)}
    return Df2Params(**checked)


def typed(section: str, cls, key: str, value, path):
    """`value` when `key` is a field of `cls` and `value` has its default's type (an int for a float)."""
    defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(cls)}
    if key not in defaults:
        raise InputError(f"{section}: unknown key {key!r}", path)
    kind = type(defaults[key])
    if kind is float and type(value) is int:
        return float(value)
    if type(value) is not kind:
        raise InputError(f"{section}.{key}: expected {kind.__name__}, got {value!r}", path)
    return value

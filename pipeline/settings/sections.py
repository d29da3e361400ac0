"""The settings tree: one frozen dataclass per section of params.yaml, holding its defaults.

A section that configures a library extends that library's own config dataclass with what only
the command line needs (where files go, how many processes), so the library receives the section
itself as its config. Every class here imports nothing heavy: the tree is built before a command
loads torch or pandas. `pipeline.settings.load` fills it from the YAML files and the flags.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.cache_format import CacheConfig, check_layout
from pipeline.ensembling.config import EnsembleConfig, TuneConfig
from pipeline.errors import InputError
from pipeline.inference.config import InferConfig, TTAConfig
from pipeline.parallel import check_workers
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.submission.config import SubmitConfig
from pipeline.synthetic.config import Df2SynthConfig, SynthConfig
from pipeline.training.config import ModelEntry, TrainConfig
from pipeline.typed import Keys, Origins, Where, build

@dataclass(frozen=True)
class DataSettings:
    root: str = "data/synthetic"
    layout: str = "kaggle"  # root's files (`pipeline.data.cache_format.split_files`): kaggle | fashionpedia

    def __post_init__(self):
        check_layout(self.layout)


@dataclass(frozen=True)
class WeightsSettings:
    variant: str = "lite0"
    out: str = "weights/tf_efficientnet_lite0.pth"


@dataclass(frozen=True)
class SynthSettings(SynthConfig):
    out: str = "data/synthetic"


@dataclass(frozen=True)
class CacheSettings(CacheConfig):
    dir: str = "cache"
    workers: int = 2  # decoding processes; 0: in the command's own

    def __post_init__(self):
        super().__post_init__()
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")


@dataclass(frozen=True)
class FoldsSettings:
    k: int = 5
    seed: int = 0
    out: str = "cache/folds.csv"
    report: str = "reports/folds.json"

    def __post_init__(self):
        if self.k < 2:
            raise ValueError(f"k must be at least 2, got {self.k}")


@dataclass(frozen=True)
class TrainSettings(TrainConfig):
    models: tuple[str, ...] = ()  # the families `dvc repro` trains (DVC's matrix)
    folds: tuple[int, ...] = ()   # the folds `dvc repro` trains and predicts; empty: every fold


@dataclass(frozen=True)
class ModelSettings:
    config: str                                         # the model's architecture YAML
    train: dict = field(default_factory=dict)           # overrides of `train` (checked as the tree is built)


@dataclass(frozen=True)
class PredictSettings:
    tta: TTAConfig = field(default_factory=TTAConfig)
    batch_size: int = 1
    fp16: bool = True
    threads: int = 0

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")


@dataclass(frozen=True)
class EvaluateSettings:
    kaggle_denominator: str = "tp_fp_fn"
    kaggle_thresholds: str = "strict"
    workers: int | None = None  # processes scoring chunks of images; None: every core

    def __post_init__(self):
        self.kaggle  # checks both values
        check_workers(self.workers)

    @property
    def kaggle(self) -> KaggleOptions:
        return KaggleOptions(self.kaggle_denominator, self.kaggle_thresholds)


@dataclass(frozen=True)
class ReportSettings:
    models: tuple[str, ...] = ()      # empty: every <predictions_dir>/*.csv
    predictions_dir: str = "predictions/oof"
    folds: str | None = None          # None: folds.out
    gt: str | None = None             # None: <data.root>/train.csv
    out: str = "reports/cv_metrics.json"
    plots: str = "reports/plots"
    workers: int | None = None        # processes scoring chunks of images; None: every core

    def __post_init__(self):
        check_workers(self.workers)


@dataclass(frozen=True)
class EnsembleSettings(EnsembleConfig):
    models: tuple[str, ...] = ()                          # empty: train.models
    weights: dict[str, float] = field(default_factory=dict)  # per model, default 1

    def __post_init__(self):
        super().__post_init__()
        if any(w <= 0 for w in self.weights.values()):
            raise ValueError(f"weights must be positive, got {self.weights}")

    def weight(self, model: str) -> float:
        return self.weights.get(model, 1.0)


@dataclass(frozen=True)
class TuneSettings(TuneConfig):
    predictions: str = "predictions/oof/ensemble.csv"
    out: str = "tuning/thresholds.json"
    report: str = "reports/tuning.json"
    gt: str | None = None     # None: <data.root>/train.csv
    folds: str | None = None  # None: folds.out


@dataclass(frozen=True)
class SubmitSettings(SubmitConfig):
    predictions: str = "predictions/test/ensemble.csv"
    out: str = "submissions/submission.csv"
    thresholds: str | None = None  # tune's thresholds JSON applied first; None: none


@dataclass(frozen=True)
class Df2SynthSettings(Df2SynthConfig):
    out: str = "data/deepfashion2_synthetic"    # its own folder: never `root` when that is the real dataset


@dataclass(frozen=True)
class Df2Settings:
    root: str = "data/deepfashion2_synthetic"   # train/ and validation/ in DeepFashion2's layout
    synth: Df2SynthSettings = field(default_factory=Df2SynthSettings)
    cache_dir: str = "cache/df2"                # <cache_dir>/<split>.h5
    cache_max_size: int = 192                   # longest image side in both caches
    model: str = ""                             # the name `train --model` and models/<name>/ use; "": no track
    config: str = ""                            # its architecture YAML
    train: dict = field(default_factory=dict)   # overrides of `train` for this model
    predictions: str = "predictions/df2"        # bbox.json, segm.json, keypoints.json, gallery_index/, retrieval.json
    query_threshold: float = 0.5                # lowest detection score of a query (consumer) item
    gallery_threshold: float = 0.5              # lowest detection score of a gallery (shop) item
    threads: int = 1                            # torch CPU threads of predict-df2 and retrieve; 0: torch's default
    report: str = "reports/df2_metrics.json"

    def cache(self, split: str) -> Path:
        """The cache file of `split` (train or validation)."""
        return Path(self.cache_dir) / f"{split}.h5"


@dataclass(frozen=True)
class Settings:
    """params.yaml as values: built once at a command's edge, then passed down."""

    data: DataSettings = field(default_factory=DataSettings)
    weights: WeightsSettings = field(default_factory=WeightsSettings)
    synth: SynthSettings = field(default_factory=SynthSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    folds: FoldsSettings = field(default_factory=FoldsSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    models: dict[str, ModelSettings] = field(default_factory=dict)
    predict: PredictSettings = field(default_factory=PredictSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    ensemble: EnsembleSettings = field(default_factory=EnsembleSettings)
    tune: TuneSettings = field(default_factory=TuneSettings)
    submit: SubmitSettings = field(default_factory=SubmitSettings)
    infer: InferConfig = field(default_factory=InferConfig)
    df2: Df2Settings = field(default_factory=Df2Settings)
    # Where each key was written (file and line), for errors found after the tree is built; not a key.
    origins: Origins = field(default_factory=Origins, init=False, compare=False, repr=False)

    @property
    def data_root(self) -> Path:
        return Path(self.data.root)

    def train_csv(self) -> Path:
        """Kaggle's train.csv under data.root, the ground truth of cross-validation (folds, report,
        tune, held-out scores); a fashionpedia layout is refused in one line: its protocol, the
        papers', trains on every image and scores val2020 (profiles/fashionpedia/dvc.yaml)."""
        if self.data.layout != "kaggle":
            raise self.error(f"cross-validation reads Kaggle's train.csv; the {self.data.layout} layout has none: "
                             "its protocol trains on every image and scores val2020 (profiles/fashionpedia/dvc.yaml)",
                             "data", "layout")
        return self.data_root / "train.csv"

    def error(self, message: str, *keys: str) -> InputError:
        """An InputError about the value at `keys`, naming the file and line that set it."""
        return InputError(message, *self.origins(keys))

    def trained_configs(self) -> dict[str, Path]:
        """model name -> config file of every model the DAG trains: `train.models` and the DeepFashion2 model."""
        names = [*self.train.models, *[self.df2.model] * bool(self.df2.model)]
        return {name: self.model(name).config for name in names}

    def trained_folds(self) -> list[int]:
        """`train.folds`, or every fold of `folds.k`."""
        return list(self.train.folds) or list(range(self.folds.k))

    def model(self, name: str, where: Where | None = None) -> ModelEntry:
        """The config file and training knobs of model `name`: an entry of `models`, or the
        DeepFashion2 track's model (`df2.model`, `df2.config`, `df2.train`), its `train` over `train`."""
        where = where or self.origins
        config, overrides, at = self._model_source(name, where)
        base = {f.name: _plain(getattr(self.train, f.name)) for f in dataclasses.fields(TrainConfig)}
        merged = _merged(base, overrides)
        train = build(TrainConfig, merged, lambda keys: where(at + keys) if _has(overrides, keys) else where(
            ("train", *keys)))
        return ModelEntry(name, Path(config), train)

    def train_key(self, name: str, *keys: str) -> Keys:
        """The key path that sets model `name`'s training knob `keys` (for errors): its own `train`
        overrides where they have it, else the shared `train` section."""
        _, overrides, at = self._model_source(name, self.origins)
        return (*at, *keys) if _has(overrides, keys) else ("train", *keys)

    def _model_source(self, name: str, where: Where) -> tuple[str, dict, Keys]:
        """Model `name`'s config file, its `train` overrides and where they are in params."""
        if name and name == self.df2.model:
            return self.df2.config, self.df2.train, ("df2", "train")
        if name in self.models:
            return self.models[name].config, self.models[name].train, ("models", name, "train")
        known = ", ".join([*self.models, *[self.df2.model] * bool(self.df2.model)])
        raise InputError(f"model {name!r} is not in params models (known: {known})", *where(("models",)))


def _plain(value):
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def _merged(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key),
                                                                                              dict) else value
    return merged


def _has(mapping: dict, keys: Keys) -> bool:
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            return False
        mapping = mapping[key]
    return True

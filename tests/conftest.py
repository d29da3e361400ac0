"""Shared fixtures. `../shared` (read-only reference data) sits beside the project root."""
import io
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def fashionpedia_sample(shared_dir) -> Path:
    return shared_dir / "data" / "fashionpedia_sample"


def write_tiny_project(root: Path, train_images: int = 6, test_images: int = 2, seed: int = 0,
                       model_config: dict | None = None, train: dict | None = None, image_size: int = 256,
                       model: str = "attribute_mask_rcnn", config: Path | None = None) -> Path:
    """A whole project in `root`: synthetic data, caches, 2 folds and a params.yaml using them.

    Images are at most `image_size` px. `model` is trained with `config` (default
    `configs/<model>_r18.yaml` style: the family's CPU config) updated by `model_config`.
    Stage commands run with `--params root/params.yaml`; outputs with relative default paths
    land in the current directory, so tests chdir into `root`.
    """
    import yaml

    from pipeline.data.cache_format import CacheConfig
    from pipeline.data.cache_build import build_cache
    from pipeline.synthetic.fashionpedia import generate
    from pipeline.models.factory import load_config
    from pipeline.typed import to_mapping

    data = generate(root / "data", train_images, test_images, seed, min_size=image_size * 5 // 8,
                    max_size=image_size, large_fraction=0)
    for split in ("train", "test"):
        build_cache(data, split, root / "cache" / f"{split}.h5", CacheConfig(max_size=image_size))
    config = to_mapping(load_config(config or ROOT / "configs" / "attribute_mask_rcnn_r18.yaml"))
    config.update(model_config or {})
    (root / "model.yaml").write_text(yaml.safe_dump(config))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["root"] = str(data)
    params["cache"].update(dir=str(root / "cache"), max_size=image_size, codec="raw")
    params["folds"].update(k=2, out=str(root / "cache" / "folds.csv"), report=str(root / "folds.json"))
    params["train"].update({"workers": 0, "processes": 1, "checkpoint_every": 2, "log_every": 1, **(train or {})})
    params["train"]["models"] = [model]
    params["models"] = {model: {"config": str(root / "model.yaml"), "train": {}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    from pipeline.cli import main

    assert main(["--params", str(root / "params.yaml"), "folds"]) == 0
    return root / "params.yaml"


def tiny_df2(root: Path, pairs: int, size: int, seed: int = 0) -> Path:
    """A synthetic DF2 train split of `pairs` outfits at most `size` px (`synth-df2`), its cache `root/train.h5`
    and its retrieval ground truth `root/query_gt.json`, `root/gallery_gt.json` (the split folder returned)."""
    from pipeline import io
    from pipeline.data.deepfashion2 import annotations as df2
    from pipeline.data.cache_format import CacheConfig
    from pipeline.data.deepfashion2.cache import build_cache
    from pipeline.synthetic.config import Df2SynthConfig
    from pipeline.synthetic.deepfashion2.dataset import build

    build(root / "data", Df2SynthConfig(train_pairs=pairs, validation_pairs=1, seed=seed, min_size=size * 4 // 5,
                                         max_size=size))
    split = root / "data" / "train"
    build_cache(split, root / "train.h5", CacheConfig(max_size=size))
    query, gallery = df2.retrieval_ground_truth(df2.read_annotations(split / "annos"))
    io.write_json(root / "query_gt.json", query)
    io.write_json(root / "gallery_gt.json", gallery)
    return split


def embedded_config(name: str):
    """The family's config as the embedded params.yaml trains it (a `models` entry or the DeepFashion2
    model), without its `init` file: every family in the family table has one."""
    from pipeline.models.config import portable
    from pipeline.models.factory import load_config
    from pipeline.settings.load import load_settings

    settings = load_settings(ROOT / "params.yaml")
    for model in [*settings.models, settings.df2.model]:
        config = load_config(ROOT / settings.model(model).config)
        if config.family == name:
            return portable(config)
    raise AssertionError(f"family {name} has no model in params.yaml")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A project folder with empty library caches and no network; the list of attempted connections."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network blocked in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return attempts


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, where progress bars are drawn."""

    def isatty(self):
        return True


def drawn(monkeypatch, command: list[str]) -> str:
    """What `python -m pipeline *command` draws on a terminal's stderr (its progress bars); it must exit 0."""
    from pipeline.cli import main

    terminal = Terminal()
    with monkeypatch.context() as patched:
        patched.setattr(sys, "stderr", terminal)
        assert main(command) == 0
    return terminal.getvalue()

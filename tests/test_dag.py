"""dvc.yaml against params.yaml and the CLI: the DAG names what the stages really read and run."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_ensemble_stages_list_every_trained_family():
    """DVC cannot read a dependency list from params: the lines must follow train.models by hand."""
    models = PARAMS["train"]["models"]
    assert sorted(d for d in DVC["ensemble-oof"]["deps"] if d.startswith("predictions/")) == sorted(
        f"predictions/oof/{m}.csv" for m in models)
    assert sorted(d for d in DVC["ensemble-test"]["deps"] if d.startswith("predictions/")) == sorted(
        f"predictions/test/{m}" for m in models)


def test_every_stage_runs_a_pipeline_subcommand():
    names = {name for name, _, _ in COMMANDS}
    for stage, spec in DVC.items():
        for command in spec["cmd"].split("&&"):
            words = shlex.split(command)
            assert words[:3] == ["python", "-m", "pipeline"], stage
            assert words[3] in names, (stage, words[3])


def test_dag_order_from_cache_to_submission():
    """`dvc dag` resolves the file: each stage's inputs come out of the stage before it."""
    out = subprocess.run([sys.executable, "-m", "dvc", "dag", "--outs", "--dot"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    edges = {tuple(part.strip().strip('"') for part in line.rstrip(";").split("->"))
             for line in out.splitlines() if "->" in line}
    chain = ["predictions/oof/attribute_mask_rcnn.csv", "predictions/oof/ensemble.csv", "tuning/thresholds.json",
             "submissions/submission.csv"]
    for upstream, downstream in zip(chain, chain[1:]):
        assert (upstream, downstream) in edges, (upstream, downstream, sorted(edges))


def test_train_stage_depends_on_whole_sections_and_the_run_key_s_code():
    """No knob list to keep in step: the train stages read whole sections, and their code deps hold the
    run key's code (pipeline/training/config.py), so a change the key sees always reruns the stage."""
    from pipeline.training.config import TRAINING_SOURCE
    from pipeline.training.train import DF2_SOURCE

    assert set(DVC["train"]["params"]) == {"train", "models.${item.model}"}
    assert "train" in DVC["train-df2"]["params"]
    for stage in ("train", "train-df2"):
        deps = set(DVC[stage]["deps"])
        for part in TRAINING_SOURCE + DF2_SOURCE + ("code_version.py",):
            assert any(f"pipeline/{part}".startswith(dep) for dep in deps if dep.startswith("pipeline/")), (stage, part)
        assert "pipeline/stages/train.py" in deps


def test_train_stage_depends_on_the_init_file_of_every_trained_config():
    from pipeline.models.factory import load_config

    inits = {load_config(ROOT / PARAMS["models"][m]["config"]).init for m in PARAMS["train"]["models"]} - {None}
    assert inits <= {PARAMS["weights"]["out"]}  # the file the weights stage writes ...
    assert "${weights.out}" in DVC["train"]["deps"]  # ... so that it runs first


def test_cache_stage_depends_on_the_code_and_knobs_of_its_fingerprint():
    from dataclasses import fields

    from pipeline.data.cache_format import CACHE_SOURCE, CacheConfig

    cache = DVC["cache"]
    assert {f"pipeline/{part}" for part in CACHE_SOURCE} | {"pipeline/code_version.py"} <= set(cache["deps"])
    assert set(cache["params"]) == {"data.root", "data.layout"} | {f"cache.{f.name}" for f in fields(CacheConfig)}
    assert all(next(iter(out.values()))["persist"] for out in cache["outs"])


def test_model_and_prediction_paths_are_the_layout_module_s():
    from pipeline import layout

    model, fold = "${item.model}", "${item.fold}"
    assert [next(iter(o)) for o in DVC["train"]["outs"]] == [str(layout.model_file(model, fold))]
    assert str(layout.model_file(model, fold)) in DVC["predict-oof"]["deps"]
    for split in layout.SPLITS:
        assert [next(iter(o)) for o in DVC[f"predict-{split}"]["outs"]] == [
            str(layout.fold_predictions(split, model, fold))]
        assert [next(iter(o)) for o in DVC[f"ensemble-{split}"]["outs"]] == [str(layout.ensemble_predictions(split))]
    assert [next(iter(o)) for o in DVC["gather"]["outs"]] == [str(layout.oof_predictions(model))]


def test_deepfashion2_stages_follow_the_code():
    """The DF2 track: train-df2's paths are the layout's, and every stage's file names are the commands'
    (predict-df2's outputs, report-df2's inputs)."""
    from pipeline import layout
    from pipeline.evaluation.deepfashion2 import report as report_df2
    from pipeline.settings.sections import Df2Settings

    train = DVC["train-df2"]
    assert {"${df2.config}", "${weights.out}", "${df2.cache_dir}/train.h5"} <= set(train["deps"])
    model = "${df2.model}"
    assert [next(iter(o)) for o in train["outs"]] == [str(layout.df2_model_file(model))]
    assert [next(iter(m)) for m in train["metrics"]] == [str(layout.df2_model_dir(model) / "train.json")]
    for stage in ("predict-df2", "retrieve"):
        assert str(layout.df2_model_file(model)) in DVC[stage]["deps"]
    predicted = [f"${{df2.predictions}}/{task}.json" for task in report_df2.DETECTION]
    index = f"${{df2.predictions}}/{layout.DF2_GALLERY_INDEX}"
    assert [next(iter(o)) for o in DVC["predict-df2"]["outs"]] == [*predicted, index]
    assert index in DVC["retrieve"]["deps"]
    assert [next(iter(o)) for o in DVC["retrieve"]["outs"]] == [f"${{df2.predictions}}/{report_df2.RETRIEVAL}"]
    assert {*predicted, f"${{df2.predictions}}/{report_df2.RETRIEVAL}"} <= set(DVC["report-df2"]["deps"])
    assert [next(iter(m)) for m in DVC["report-df2"]["metrics"]] == ["${df2.report}"]
    assert all(next(iter(o.values()))["persist"] for o in DVC["cache-df2"]["outs"])
    # each stage's params name existing keys of the df2 section
    for stage in ("synth-df2", "cache-df2", "train-df2", "predict-df2", "retrieve", "report-df2"):
        for name in DVC[stage]["params"]:
            if name.startswith("df2."):
                assert name.split(".")[1] in Df2Settings.__dataclass_fields__, (stage, name)


def test_every_stage_s_module_is_a_dependency():
    """A stage's own thin module (pipeline/stages/<command>.py) is among its deps, so editing it reruns it."""
    for stage, spec in DVC.items():
        for command in spec["cmd"].split("&&"):
            name = shlex.split(command)[3]
            assert f"pipeline/stages/{name.replace('-', '_')}.py" in spec["deps"], stage


def test_weights_stage_reruns_when_a_trained_model_s_start_may_change():
    """The stage fetches and loads the `init` of every trained model (train.models and the df2 model)."""
    weights = DVC["weights"]
    assert {"weights", "train.models", "models", "df2.model", "df2.config"} <= set(weights["params"])
    assert {"configs", "pipeline/models/starts.py", "pipeline/models/prefetch.py"} <= set(weights["deps"])


def test_no_stage_writes_into_the_downloaded_datasets_of_the_real_profile():
    """With the real profile the data folders hold the downloaded sets: no stage may have them as an output
    (DVC deletes a stage's outputs before running it). synth-df2 once wrote into df2.root."""
    import re

    from pipeline.settings.load import merged_params

    values, _ = merged_params(ROOT / "params.yaml", str(ROOT / "profiles" / "real.yaml"))

    def resolved(text: str) -> str:
        def value(match):
            node = values
            for key in match[1].split("."):
                node = node[key]
            return str(node)
        return re.sub(r"\$\{([^}]+)\}", value, text)

    datasets = [Path(values["data"]["root"]), Path(values["df2"]["root"])]
    for stage, spec in DVC.items():
        for out in spec.get("outs", []):
            path = next(iter(out)) if isinstance(out, dict) else out
            if "${item." in path:
                continue
            written = Path(resolved(path))
            assert not any(written == d or d in written.parents or written in d.parents for d in datasets), (
                stage, str(written))


# Keys that change how fast a stage runs, never what it writes: a change reruns nothing.
SPEED_ONLY = ("workers", "threads")


def test_speed_only_keys_rerun_no_stage_but_every_other_key_of_a_stage_s_sections_does():
    """A stage that lists some keys of a section lists all of them but the speed-only ones: a knob added to
    params.yaml later reruns what reads it. Training takes whole sections (its run key ignores the rest)."""
    profile = yaml.safe_load((ROOT / "profiles" / "fashionpedia" / "dvc.yaml").read_text())["stages"]
    for stage, spec in [*DVC.items(), *profile.items()]:
        listed = [p for p in spec.get("params", []) if isinstance(p, str)]
        for section in {p.split(".")[0] for p in listed} - {"train", "models", "df2", "data", "weights"}:
            keys = PARAMS[section]
            if not isinstance(keys, dict) or not set(SPEED_ONLY) & set(keys):
                continue
            assert section not in listed, (stage, section)
            wanted = {f"{section}.{k}" for k in keys if k not in SPEED_ONLY}
            # a key in a path (`${cache.dir}/train.h5`) changes the stage's own definition
            named = {p for p in listed if p.split(".")[0] == section} | set(re.findall(rf"\$\{{({section}\.\w+)\}}",
                                                                                       str(spec)))
            if section == "cache" and stage != "cache":
                continue  # the DeepFashion2 cache shares the codec keys only
            assert named == wanted, (stage, sorted(wanted ^ named))

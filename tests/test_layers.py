"""Inside `pipeline/` imports follow the data's way and never go back up it (the developers' guide)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
# Package -> layer: a module may import its own layer's and lower layers' packages only. `scoring`
# (the metrics as a library) sits beside `models`, so that training's validation, tuning and the
# evaluation commands can all score. The top-level modules (io, errors, params, ...) are layer -1.
LAYERS = {"data": 0, "models": 1, "scoring": 1, "training": 2, "inference": 3, "ensembling": 3,
          "submission": 4, "evaluation": 4}
ANYTHING = {"benchmarks", "cli.py", "__main__.py"}  # they run the stages: may import every layer


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, package under pipeline/) of every import in a file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "pipeline":  # from pipeline import data
            names = [f"pipeline.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name.split(".")[1]) for name in names if name.startswith("pipeline.")]
    return found


def backward_imports(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        top = path.relative_to(root).parts[0]
        if top in ANYTHING:
            continue
        layer = LAYERS.get(top, -1)
        for line, package in imported_packages(path):
            if LAYERS.get(package, -1) > layer:
                problems.append(f"{path.relative_to(root.parent)}:{line} imports pipeline.{package}")
    return problems


def test_no_module_imports_back_up_the_chain():
    assert backward_imports(PACKAGE) == []


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - ANYTHING == set(LAYERS)


def test_the_scan_finds_a_backward_import(tmp_path):
    (tmp_path / "pipeline" / "training").mkdir(parents=True)
    (tmp_path / "pipeline" / "training" / "bad.py").write_text(
        "def f():\n    from pipeline.inference.predict import predict\n")
    (tmp_path / "pipeline" / "errors.py").write_text("import pipeline.data.rle\nfrom pipeline import io\n")
    (tmp_path / "pipeline" / "models").mkdir()
    (tmp_path / "pipeline" / "models" / "bad.py").write_text("from pipeline import data, ensembling\n")
    (tmp_path / "pipeline" / "benchmarks").mkdir()
    (tmp_path / "pipeline" / "benchmarks" / "ok.py").write_text("from pipeline.evaluation import report\n")
    assert backward_imports(tmp_path / "pipeline") == [
        "pipeline/errors.py:1 imports pipeline.data",
        "pipeline/models/bad.py:1 imports pipeline.ensembling",
        "pipeline/training/bad.py:2 imports pipeline.inference",
    ]

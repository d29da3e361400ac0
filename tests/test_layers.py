"""Inside `pipeline/` imports follow the data's way, never go back up it and never go round in a circle."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
# Package or top-level module -> layer: a module may import its own layer's and lower layers' only.
# `scoring` (the metrics as a library) sits beside `models`, so that training's validation, tuning and
# the evaluation commands can all score; the synthetic generators beside them, on the data layer.
# `settings` builds the settings tree from the libraries' config classes; the command line's edge
# (`stages`, `benchmarks`, `cli`) sits on top. The other top-level modules (io, errors, typed, ...) are
# layer -1.
LAYERS = {"data": 0, "models": 1, "scoring": 1, "synthetic": 1, "training": 2, "inference": 3, "ensembling": 3,
          "submission": 4, "evaluation": 4, "settings": 5, "stages": 6, "benchmarks": 6, "rehearsal": 6, "cli.py": 6,
          "__main__.py": 6}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import of a pipeline module in a file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pipeline.data import rle` imports a module; `from pipeline.data.rle import encode` its module
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "pipeline"]


def module_of(name: str, root: Path) -> str | None:
    """The module file a dotted import name refers to (`pipeline.data.rle.encode` -> `pipeline.data.rle`)."""
    parts = name.split(".")[1:]
    while parts:
        if (root.joinpath(*parts).with_suffix(".py")).exists() or (root.joinpath(*parts) / "__init__.py").exists():
            return "pipeline." + ".".join(parts)
        parts = parts[:-1]
    return None


def layer(module: str) -> int:
    parts = module.split(".")[1:]
    if not parts:
        return -1
    return LAYERS.get(parts[0], LAYERS.get(f"{parts[0]}.py", -1))


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        found[".".join(("pipeline", *parts))] = path
    return found


def backward_imports(root: Path) -> list[str]:
    problems = []
    for module, path in modules(root).items():
        for line, name in imports(path):
            target = module_of(name, root)
            if target is not None and layer(target) > layer(module):
                problems.append(f"{path.relative_to(root.parent)}:{line} imports {target}")
    return problems


def circles(root: Path) -> list[list[str]]:
    """Every import cycle between modules (each found once, from its smallest module)."""
    graph = {module: sorted({t for _, name in imports(path) if (t := module_of(name, root)) and t != module
                             and not (root / Path(*t.split(".")[1:]) / "__init__.py").exists()})
             for module, path in modules(root).items()}
    found = []

    def walk(start: str, node: str, trail: list[str]) -> None:
        for nxt in graph.get(node, ()):
            if nxt == start:
                found.append(trail)
            elif nxt > start and nxt not in trail:
                walk(start, nxt, trail + [nxt])

    for start in graph:
        walk(start, start, [start])
    return found


def test_no_module_imports_back_up_the_chain():
    assert backward_imports(PACKAGE) == []


def test_no_import_circles():
    assert circles(PACKAGE) == []


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == {name for name in LAYERS if not name.endswith(".py")}


def test_the_scan_finds_backward_imports_and_circles(tmp_path):
    root = tmp_path / "pipeline"
    for folder in ("training", "models", "benchmarks", "data", "stages"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "training" / "bad.py").write_text("def f():\n    from pipeline.inference.predict import predict\n")
    (root / "inference").mkdir()
    (root / "inference" / "__init__.py").write_text("")
    (root / "inference" / "predict.py").write_text("")
    (root / "errors.py").write_text("import pipeline.data.rle\nfrom pipeline import io\n")
    (root / "io.py").write_text("")
    (root / "data" / "rle.py").write_text("from pipeline.data.sorted_csv import x\n")
    (root / "data" / "sorted_csv.py").write_text("def f():\n    from pipeline.data import rle\n")
    (root / "models" / "bad.py").write_text("from pipeline.stages import train\n")
    (root / "stages" / "train.py").write_text("")
    (root / "benchmarks" / "ok.py").write_text("from pipeline.stages.train import run\n")
    assert backward_imports(root) == [
        "pipeline/errors.py:1 imports pipeline.data.rle",
        "pipeline/models/bad.py:1 imports pipeline.stages.train",
        "pipeline/training/bad.py:2 imports pipeline.inference.predict",
    ]
    assert circles(root) == [["pipeline.data.rle", "pipeline.data.sorted_csv"]]

"""The Kaggle notebook (`notebooks/kaggle_inference.ipynb`) on a rehearsal's model files and test images,
as a Kaggle kernel runs it: the repository as a read-only input folder, the competition's folder of test
images, every fold's `model.pt`, the tuned thresholds, a separate working folder, no network.

Run as `python -m pipeline.rehearsal.notebook SPEC.json` (the rehearsal measures it as one command);
the spec holds the notebook's path, its parameters and the working directory.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path("notebooks") / "kaggle_inference.ipynb"
TIMEOUT_SECONDS = 3600  # per cell: fifteen fold models predict the test images in one cell


def parameters(project: Path, settings, work: Path, models: dict[str, list[Path]]) -> dict:
    """The notebook's `parameters` cell for the rehearsal's copy of the project, from its settings."""
    tta = settings.predict.tta
    return {
        "PACKAGE_DIR": str(project), "WHEELS_DIR": None, "DATA_DIR": str(project / settings.data.root),
        "WEIGHTS": {family: [str(p) for p in paths] for family, paths in models.items()},
        "FAMILY_WEIGHTS": {family: settings.ensemble.weight(family) for family in models},
        "WORK_DIR": str(work), "MAX_SIDE": settings.cache.max_size, "CACHE_CODEC": "jpeg",
        "TTA_HFLIP": tta.hflip, "TTA_SCALES": list(tta.scales), "TTA_MERGE_IOU": tta.merge_iou,
        "SUBMIT_MAX_SIDE": settings.submit.max_side, "OVERLAP": settings.submit.overlap,
        "THRESHOLDS": str(project / settings.tune.out),
    }


def execute(notebook_path: Path, values: dict, cwd: Path) -> nbformat.NotebookNode:
    """Run the notebook with its `parameters` cell replaced by `values` (what papermill does)."""
    notebook = nbformat.read(notebook_path, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    NotebookClient(notebook, timeout=TIMEOUT_SECONDS, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def printed(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook's code cells printed."""
    return "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    notebook = execute(Path(spec["notebook"]), spec["parameters"], Path(spec["cwd"]))
    print(printed(notebook), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""The command line imports only the module of the command that runs."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import COMMANDS, chosen_command

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("torch", "pandas", "sklearn", "iterstrat", "matplotlib")


def test_chosen_command_skips_options_and_the_params_value():
    assert chosen_command(["--params", "p.yaml", "evaluate", "--gt", "x"]) == "evaluate"
    assert chosen_command(["--params=p.yaml", "tune"]) == "tune"
    assert chosen_command(["-h"]) is None


@pytest.mark.parametrize("argv", [["evaluate", "--help"], ["--help"]])
def test_help_imports_no_heavy_package(argv):
    code = ("import sys\nfrom pipeline.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print(','.join(sorted(m for m in %r if m in sys.modules)))" % (argv, HEAVY))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == ""


def test_a_command_imports_its_own_module_only():
    code = ("import sys\nfrom pipeline.cli import build_parser\nbuild_parser(['gather', '--model', 'm'])\n"
            "print(sorted(m for m in %r if m in sys.modules))" % ([path for _, path, _ in COMMANDS],))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['pipeline.stages.gather']"


def test_one_family_imports_no_other_familys_packages():
    """A Mask R-CNN-only Kaggle kernel needs no effdet wheel: predict imports only the model's family."""
    code = ("import sys\nfrom pipeline.models.factory import create_model, load_config\n"
            "create_model(load_config('configs/attribute_mask_rcnn_regnetx002.yaml'))\n"
            "import pipeline.inference.predict, pipeline.data.cache_format, pipeline.data.folds, pipeline.training.train\n"
            "import pipeline.ensembling.ensemble, pipeline.submission.write, pipeline.submission.validate\n"
            "print(sorted(m for m in ('effdet', 'iterstrat', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_a_benchmark_imports_its_own_module_only():
    from pipeline.stages.bench import BENCHMARKS

    code = ("import sys\nfrom pipeline.cli import main\ntry:\n    main(['bench', 'rle', '--help'])\n"
            "except SystemExit:\n    pass\nprint(sorted(m for m in %r if m in sys.modules))"
            % ([path for _, path, _ in BENCHMARKS],))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.splitlines()[-1] == "['pipeline.benchmarks.rle']"


def test_importing_the_libraries_uses_no_network():
    """albumentations asks PyPI for its newest version at import unless told not to (found by the rehearsal)."""
    code = ("import socket\ntried = []\n"
            "def refuse(*args, **kwargs):\n    tried.append(args)\n    raise OSError('blocked')\n"
            "socket.getaddrinfo = refuse\nsocket.socket.connect = refuse\n"
            "import pipeline.training.transforms, pipeline.inference.predict, pipeline.models.factory\n"
            "print(tried)")
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert out.stdout.strip() == "[]", out.stdout

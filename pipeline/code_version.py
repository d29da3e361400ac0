"""The version of the code behind an output: a hash of its Python source's syntax trees.

Comments, blank lines, formatting and docstrings do not change it, so editing them neither
restarts a training run nor rebuilds a cache; a change to what the code does, does.
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def source_hash(parts: tuple[str, ...], package: Path = PACKAGE) -> str:
    """Hash of the `.py` files under `parts` (folders or files, relative to the package)."""
    digest = hashlib.sha256()
    for part in parts:
        path = package / part
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(package).as_posix().encode() + b"\0")
            digest.update(_syntax(file).encode() + b"\0")
    return digest.hexdigest()


def _syntax(file: Path) -> str:
    tree = ast.parse(file.read_bytes(), str(file))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and _docstring(node):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)  # without line numbers


def _docstring(node) -> bool:
    first = node.body[0] if node.body else None
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)

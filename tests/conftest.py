"""Shared fixtures. `../shared` (read-only reference data) sits beside the project root."""
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

import pytest

from pipeline.data import ontology as ontology_lib


@pytest.fixture(scope="session")
def ontology():
    return ontology_lib.load()

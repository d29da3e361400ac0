"""Category and attribute ids of the ontology, looked up by the names the scene code uses."""
from __future__ import annotations

import numpy as np

from pipeline.data.ontology import CATEGORIES_WITH_ATTRIBUTES, Ontology


class Labels:
    """Category and attribute ids of the ontology, looked up by name."""

    def __init__(self, ontology: Ontology):
        self._categories = {c.name: c.id for c in ontology.categories}
        self._attributes = {a.name: a.id for a in ontology.attributes}

    def category(self, name: str) -> int:
        if name not in self._categories:
            raise ValueError(f"the ontology has no category {name!r}")
        return self._categories[name]

    def attributes(self, names) -> tuple[int, ...]:
        """Sorted ids of the named attributes; None entries (unlabelled choices) are skipped."""
        missing = [n for n in names if n is not None and n not in self._attributes]
        if missing:
            raise ValueError(f"the ontology has no attribute {missing[0]!r}")
        return tuple(sorted({self._attributes[n] for n in names if n is not None}))

    def random_attributes(self, rng: np.random.Generator, class_id: int, most: int) -> tuple[int, ...]:
        """1..`most` attribute ids at random for a category that has attributes; none for the others."""
        if class_id not in CATEGORIES_WITH_ATTRIBUTES:
            return ()
        ids = sorted(self._attributes.values())
        return tuple(sorted(rng.choice(ids, size=int(rng.integers(1, most + 1)), replace=False).tolist()))

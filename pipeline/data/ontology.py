"""The Fashionpedia / iMaterialist 2020 label ontology (`label_descriptions.json`).

46 categories (ids 0..45) and 294 attributes whose ids run 0..340 with gaps. Models predict
attributes as a contiguous vector of 294; `Ontology` maps between ids and vector indices.
The project ships its own copy of the public ontology, used when no other file is given.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from pipeline.errors import InputError

DEFAULT_PATH = Path(__file__).with_name("label_descriptions.json")

# Categories whose attributes FPEval scores (METRICS.md); the rest are scored on masks alone.
CATEGORIES_WITH_ATTRIBUTES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 28, 29, 31, 32, 33)

# The Fashionpedia paper's three groups of categories, by the ontology's supercategory.
GROUPS = {
    "outerwear": ("upperbody", "lowerbody", "wholebody"),
    "accessory": ("head", "neck", "arms and hands", "waist", "legs and feet", "others"),
    "part": ("garment parts", "closures", "decorations"),
}


@dataclass(frozen=True)
class Label:
    id: int
    name: str
    supercategory: str
    level: int


@dataclass(frozen=True)
class Ontology:
    categories: tuple[Label, ...]
    attributes: tuple[Label, ...]
    path: str = field(default=str(DEFAULT_PATH), compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    @property
    def num_attributes(self) -> int:
        return len(self.attributes)

    @cached_property
    def attribute_ids(self) -> np.ndarray:
        """Attribute ids in vector order (ascending)."""
        return np.array([a.id for a in self.attributes], dtype=np.int64)

    @cached_property
    def attribute_index(self) -> dict[int, int]:
        """Attribute id -> position in the 294-vector."""
        return {a.id: i for i, a in enumerate(self.attributes)}

    @cached_property
    def category_by_id(self) -> dict[int, Label]:
        return {c.id: c for c in self.categories}

    @cached_property
    def attribute_by_id(self) -> dict[int, Label]:
        return {a.id: a for a in self.attributes}

    def category_group(self, class_id: int) -> str:
        """'outerwear', 'accessory' or 'part' for a category id."""
        supercategory = self.category_by_id[class_id].supercategory
        return next(g for g, members in GROUPS.items() if supercategory in members)

    def attributes_to_vector(self, attribute_ids) -> np.ndarray:
        """Attribute ids -> 0/1 float32 vector of length num_attributes."""
        vector = np.zeros(self.num_attributes, np.float32)
        vector[[self.attribute_index[a] for a in attribute_ids]] = 1.0
        return vector

    def vector_to_attributes(self, vector, threshold: float = 0.5) -> list[int]:
        """Probabilities (or 0/1) over the 294 attributes -> sorted attribute ids above threshold."""
        return self.attribute_ids[np.asarray(vector) >= threshold].tolist()

    def attributes_of_supercategory(self, *supercategories: str) -> list[int]:
        return [a.id for a in self.attributes if a.supercategory in supercategories]


def load(path: str | Path | None = None) -> Ontology:
    """Read and validate a `label_descriptions.json`; the shipped copy when `path` is None."""
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        raw = json.loads(path.read_text())
        categories = tuple(_labels(raw["categories"]))
        attributes = tuple(sorted(_labels(raw["attributes"]), key=lambda a: a.id))
    except FileNotFoundError:
        raise InputError("label descriptions file not found", path) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise InputError(f"not a valid label_descriptions.json ({error})", path) from None
    if [c.id for c in categories] != list(range(len(categories))):
        raise InputError("category ids must be 0..N-1 in order", path)
    if len({a.id for a in attributes}) != len(attributes):
        raise InputError("attribute ids must be unique", path)
    return Ontology(categories, attributes, str(path))


def load_for_dataset(root: str | Path) -> Ontology:
    """The dataset's own `label_descriptions.json` when it has one, else the shipped copy."""
    path = Path(root) / "label_descriptions.json"
    return load(path if path.exists() else None)


def _labels(entries):
    for e in entries:
        yield Label(int(e["id"]), str(e["name"]), str(e["supercategory"]), int(e.get("level", 0)))

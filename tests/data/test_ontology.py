import json

import numpy as np
import pytest

from pipeline.data import ontology
from pipeline.errors import InputError


def test_shipped_ontology_is_the_real_one(shared_dir):
    shipped = ontology.load()
    real = ontology.load(shared_dir / "data" / "label_descriptions.json")
    assert shipped == real
    assert shipped.num_classes == 46 and shipped.num_attributes == 294
    assert shipped.attribute_ids[0] == 0 and shipped.attribute_ids[-1] == 340
    assert not np.array_equal(shipped.attribute_ids, np.arange(294))  # ids have gaps


def test_id_index_maps_are_inverse():
    labels = ontology.load()
    for index, attribute_id in enumerate(labels.attribute_ids):
        assert labels.attribute_index[int(attribute_id)] == index
    vector = labels.attributes_to_vector([340, 0, 115])
    assert vector.sum() == 3 and vector[-1] == 1 and vector[0] == 1
    assert labels.vector_to_attributes(vector) == [0, 115, 340]


def test_groups_cover_every_category():
    labels = ontology.load()
    groups = [labels.category_group(c.id) for c in labels.categories]
    assert groups.count("outerwear") == 13 and groups[31] == "part" and groups[23] == "accessory"


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        ontology.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InputError, match="not a valid"):
        ontology.load(bad)
    bad.write_text(json.dumps({"categories": [{"id": 1, "name": "x", "supercategory": "y"}], "attributes": []}))
    with pytest.raises(InputError, match="0..N-1"):
        ontology.load(bad)

"""Validation during training takes its held-out images' ground truth from a streamed train.csv."""
from types import SimpleNamespace

import pytest

from pipeline.data import ontology
from pipeline.data.annotations import read_annotations
from pipeline.errors import InputError
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.inference.validation import held_out

GT = ("ImageId,EncodedPixels,Height,Width,ClassId,AttributesIds\n"
      "b,1 1,2,2,23,\na,1 3,4,5,0,115\nc,2 2,3,3,1,\nb,3 1,2,2,6,\n")


def test_held_out_keeps_only_its_images_records(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(GT)
    labels = ontology.load()
    reader = SimpleNamespace(image_ids=["a", "b", "c"])
    held = held_out(reader, [2, 1], path, labels, 0.5, KaggleOptions(), "cpu")
    whole = {r.image_id: r for r in read_annotations(path, labels)[0]}
    assert held.records == [whole["c"], whole["b"]]
    with pytest.raises(InputError, match="image d of the cache is not in the ground truth"):
        held_out(SimpleNamespace(image_ids=["a", "d"]), [0, 1], path, labels, 0.5, KaggleOptions(), "cpu")


def test_held_out_reads_a_fashionpedia_instances_json(tmp_path):
    """The papers' protocol holds val2020 out: its records come from the val JSON."""
    from fashionpedia_layout import write_layouts

    from pipeline.data.fashionpedia import load_instances

    fp_root, _ = write_layouts(tmp_path, train_images=1, val_images=4, seed=2)
    val = fp_root / "instances_attributes_val2020.json"
    instances, _ = load_instances(val, ontology.load())
    records = {image.image_id: instances.record(image) for image in instances.images}
    ids = sorted(records)
    held = held_out(SimpleNamespace(image_ids=ids), [3, 0], val, ontology.load(), 0.5, KaggleOptions(), "cpu")
    assert held.records == [records[ids[3]], records[ids[0]]]

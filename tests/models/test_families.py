"""What the pipeline asks of every family, run over the family table: a new family is one row there
plus its package (and a config and params.yaml entry), and these checks cover it at once."""
import dataclasses

import pytest
import torch

from conftest import embedded_config
from family import assert_state_dict_round_trips
from pipeline.models.factory import FAMILIES, config_class, create_model, family, model_class

NAMES = sorted(FAMILIES)


@pytest.mark.parametrize("name", NAMES)
def test_the_table_row_names_the_package_s_classes(name):
    row = family(name)
    assert row.dataset in ("fashionpedia", "deepfashion2")
    assert config_class(name)().family == name
    assert issubclass(model_class(name), torch.nn.Module)
    config = embedded_config(name)
    assert isinstance(config, config_class(name)) and config.crop_side > 0


def test_an_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown model family 'nope'"):
        family("nope")


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trips(tmp_path, name):
    assert_state_dict_round_trips(tmp_path, embedded_config(name))


@pytest.mark.parametrize("name", NAMES)
def test_detections_come_at_the_input_size_with_what_the_stages_read(name):
    row, config = family(name), dataclasses.replace(embedded_config(name), score_threshold=0.0,
                                                     detections_per_image=5)
    torch.manual_seed(0)
    model = create_model(config).eval()
    with torch.no_grad():
        (output,) = model([torch.rand(3, 96, 128)])
    count = len(output["scores"])
    assert output["boxes"].shape == (count, 4) and output["labels"].shape == (count,)
    assert output["masks"].shape == (count, 1, 96, 128)
    if row.dataset == "fashionpedia":
        assert output["attributes"].shape == (count, config.num_attributes)
    if row.retrieval:
        assert output["embeddings"].shape == (count, config.embedding_size)
        assert hasattr(model, "similarity_logits")


@pytest.mark.parametrize("name", [n for n in NAMES if hasattr(model_class(n), "enlarged_input")])
def test_an_enlarged_input_is_restored_after_the_call(name):
    model = create_model(embedded_config(name)).eval()
    before = model.state_dict()
    image = [torch.rand(3, 64, 48)]
    with torch.no_grad():
        plain = model(image)[0]["masks"].shape
        with model.enlarged_input(1.5):
            model(image)
        assert model(image)[0]["masks"].shape == plain
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

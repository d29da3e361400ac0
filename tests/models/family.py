"""Checks every model family's tests share: the interface the engine, predict and bench rely on."""
import dataclasses

import torch

from pipeline.models.factory import create_model


def assert_state_dict_round_trips(tmp_path, config) -> None:
    """A model's weights saved, loaded with weights_only=True into a fresh one: same outputs."""
    config = dataclasses.replace(config, score_threshold=0.0, detections_per_image=5)
    torch.manual_seed(0)
    model = create_model(config).eval()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    torch.manual_seed(1)
    restored = create_model(config).eval()
    restored.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    image = [torch.rand(3, 96, 128)]
    with torch.no_grad():
        a, b = model(image)[0], restored(image)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)


def assert_bad_config_is_an_input_error(tmp_path, text: str, message: str, line) -> None:
    """A model YAML `text` fails to load with an InputError matching `message` at `line`."""
    import pytest

    from pipeline.errors import InputError
    from pipeline.models.factory import load_config

    path = tmp_path / "model.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as error:
        load_config(path)
    assert error.value.path == str(path) and error.value.line == line


def shipped_config_parameters(paths) -> list[int]:
    """Each config file loads, survives a mapping and YAML round trip, and builds: its parameter count."""
    import yaml

    from pipeline.typed import to_mapping
    from pipeline.models.factory import config_from_mapping, count_parameters, load_config

    counts = []
    for path in paths:
        config = load_config(path)
        assert config_from_mapping(to_mapping(config)) == config
        assert yaml.safe_load(yaml.safe_dump(to_mapping(config))) == to_mapping(config)
        counts.append(count_parameters(create_model(config)))
    return counts


def attribute_losses_by_kind(config, train_losses, images, targets) -> dict[str, float]:
    """The attribute loss of the same model and batch with `attribute_loss: focal` and `bce`."""
    values = {}
    for kind in ("focal", "bce"):
        torch.manual_seed(0)
        model = create_model(dataclasses.replace(config, attribute_loss=kind))
        torch.manual_seed(1)  # the same random draws in training (Mask R-CNN's proposal sampling)
        values[kind] = train_losses(model, images, targets)["loss_attributes"].item()
    return values


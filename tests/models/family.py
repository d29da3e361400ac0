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

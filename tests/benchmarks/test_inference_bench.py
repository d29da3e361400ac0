import json

import numpy as np

from pipeline.benchmarks.inference import default_configs, stretched
from pipeline.cli import main


def test_every_family_pastes_exactly_the_forced_detections_and_ratios_are_side_by_side(capsys):
    """Random weights must not let a family skip mask pasting (empty masks are not encoded)."""
    assert main(["bench", "inference", "--image-size", "128", "--images", "1", "--train-steps", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["models"]) == {name for name, _ in default_configs()}
    reference = default_configs()[0][0]
    # A random box that falls outside the image is clipped to nothing and has no pixels to paste.
    assert all(98 <= row["detections_per_image"] <= 100 for row in result["models"].values())
    ratios = result[f"vs_{reference}"]
    assert set(ratios) == set(result["models"]) - {reference}
    for name, ratio in ratios.items():
        row, base = result["models"][name], result["models"][reference]
        assert np.isclose(ratio["speedup"], base["seconds_per_image"] / row["seconds_per_image"], rtol=0.02)


def test_stretched_masks_span_zero_to_one_and_keep_their_shape():
    masks = np.stack([np.full((4, 5), 0.2), np.linspace(0.1, 0.3, 20).reshape(4, 5)])[:, None]
    out = stretched(masks)
    assert out.shape == masks.shape
    assert np.allclose(out[1].min(), 0) and np.allclose(out[1].max(), 1)
    assert np.all(np.diff(out[1].ravel()) > 0)  # order of the pixels kept
    assert np.all(out[0] == 0)  # a flat mask stays flat

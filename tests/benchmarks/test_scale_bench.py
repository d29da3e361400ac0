import json

from pipeline.cli import main


def test_bench_scale_runs_every_stage_at_each_size(capsys):
    assert main(["bench", "scale", "--images", "4", "--test-images", "2", "--repeats", "1", "2",
                 "--families", "2", "--false-positives", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    stages = {"gather", "ensemble-oof", "report", "tune", "ensemble-test", "submit", "validate"}
    assert [r["oof_images"] for r in result["runs"].values()] == [4, 8]
    for run in result["runs"].values():
        assert set(run["stages"]) == stages
        assert all(s["seconds"] > 0 and s["peak_rss_mb"] > 0 for s in run["stages"].values())
    assert set(result["fits"]) == stages
    assert result["fits"]["tune"]["target_images"] == 45623 and result["fits"]["submit"]["target_images"] == 3200


def test_bench_scale_writes_the_detections_per_image_asked_for():
    import numpy as np
    import pandas as pd

    from pipeline.benchmarks.scale import noisy_predictions

    gt = pd.DataFrame({"ImageId": ["a"] * 9 + ["b"], "EncodedPixels": ["1 4"] * 10, "Height": ["8"] * 10,
                       "Width": ["8"] * 10, "ClassId": ["1"] * 10, "AttributesIds": [""] * 10})
    rng = np.random.default_rng(0)
    assert noisy_predictions(gt, rng, 2, per_image=5).ImageId.value_counts().to_dict() == {"a": 5, "b": 5}
    assert noisy_predictions(gt, rng, 2).ImageId.value_counts()["b"] in (2, 3)  # the true one kept or missed

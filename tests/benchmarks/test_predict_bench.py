import json

from pipeline.cli import main


def test_bench_predict_times_the_predict_stage_per_family(capsys):
    assert main(["bench", "predict", "--images", "1", "--models", "effdet_mask_d0", "--image-size", "128",
                 "--orig-size", "256", "--detections", "5"]) == 0
    result = json.loads(capsys.readouterr().out)
    row = result["models"]["effdet_mask_d0"]
    assert result["device"] == "cpu" and row["detections_per_image"] == 5  # no mask left empty
    # both are rounded from the same unrounded seconds: 4 decimals of seconds, 3 of hours
    assert abs(row["hours_per_fold_model"] - row["seconds_per_image"] * 3200 / 3600) <= 0.0005 + 0.00005 * 3200 / 3600

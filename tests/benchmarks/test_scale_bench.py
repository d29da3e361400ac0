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

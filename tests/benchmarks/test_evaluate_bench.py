import json

from pipeline.cli import main


def test_bench_evaluate_times_all_three_on_the_same_files(capsys):
    assert main(["bench", "evaluate", "--images", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 4 and result["gt_instances"] > 0 and result["predictions"] > result["gt_instances"]
    assert set(result["seconds"]) == {"ours", "pycocotools", "fpeval"}
    assert result["speedup_vs_fpeval"] == result["seconds"]["fpeval"] / result["seconds"]["ours"]
    # The timings only count if all three gave the same numbers.
    assert all(difference < 1e-9 for difference in result["abs_difference"].values())

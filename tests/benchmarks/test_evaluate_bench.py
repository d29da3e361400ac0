import json

from pipeline.cli import main


def test_bench_evaluate_times_all_three_commands_at_each_size(capsys):
    assert main(["bench", "evaluate", "--images", "3", "5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [case["images"] for case in result["cases"]] == [3, 5]
    for case in result["cases"]:
        assert case["gt_instances"] > 0 and case["predictions"] > case["gt_instances"]
        assert set(case["seconds"]) == {"ours", "ours_json", "pycocotools", "fpeval"}
        assert case["ours_json_peak_rss_mb"] > 50
        assert set(case["abs_difference"]) == {"ap_iou_vs_pycocotools", "json_ap_iou_vs_pycocotools",
                                               "ap_iou_f1_vs_fpeval", "json_ap_iou_f1_vs_fpeval"}
        assert case["speedup_vs_fpeval"] == case["seconds"]["fpeval"] / case["seconds"]["ours"]
        # The timings only count if all three gave the same numbers.
        assert all(difference < 1e-9 for difference in case["abs_difference"].values())
    assert result["cases"][0]["gt_instances"] < result["cases"][1]["gt_instances"]

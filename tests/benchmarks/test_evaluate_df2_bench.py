import json

from pipeline.cli import main


def test_bench_evaluate_df2_times_both_sides_and_they_agree(capsys):
    assert main(["bench", "evaluate-df2", "--images", "6"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 6 and result["gt_items"] >= 6 and result["result_entries"] > result["gt_items"]
    assert set(result["seconds"]["ours"]) == {"bbox", "segm", "keypoints", "total"}
    assert set(result["seconds"]["official"]) == {"loading", "bbox", "segm", "keypoints", "total"}
    assert result["max_abs_difference"] == 0.0
    assert result["ap_ap50_ap75"]["ours"] == result["ap_ap50_ap75"]["official"]

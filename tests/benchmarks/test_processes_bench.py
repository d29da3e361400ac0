import json

from pipeline.cli import main


def test_processes_benchmark_runs_both_sides_on_the_same_steps(capsys):
    args = ["bench", "processes", "--models", "attribute_mask_rcnn", "--images", "4", "--epochs", "1", "--repeats", "1"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    row = result["models"]["attribute_mask_rcnn"]
    assert result["processes"] == 2 and result["images_per_step"] == 2
    assert row["steps"] >= 1
    assert row["one_process_images_per_s"] > 0 and row["2_processes_images_per_s"] > 0
    assert row["speedup"] == round(row["2_processes_images_per_s"] / row["one_process_images_per_s"], 2)


def test_processes_benchmark_needs_whole_batches_per_process(capsys):
    assert main(["bench", "processes", "--processes", "3", "--batch-size", "2"]) == 2
    assert "not a multiple of --processes 3" in capsys.readouterr().err

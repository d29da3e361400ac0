import json

from pipeline.cli import main


def test_cache_benchmark_reports_every_codec(capsys):
    args = ["bench", "cache", "--images", "3", "--instances", "2", "--side", "300", "--max-size", "128", "--repeats", "1"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["codecs"]) == {"raw", "jpeg"}
    assert result["dataset"]["images"] == 3 and 0 < result["dataset"]["instances_per_image"] <= 2
    raw, jpeg = result["codecs"]["raw"], result["codecs"]["jpeg"]
    assert raw["bytes_per_image"] > 128 * 80 * 3 and raw["bytes_per_image"] > jpeg["bytes_per_image"]
    assert raw["bytes_per_image_vs_jpeg"] > jpeg["bytes_per_image_vs_jpeg"] > 1  # jpeg: image + masks
    assert all(codec["read_speedup"] > 0 and codec["samples_per_s"] > 0 for codec in result["codecs"].values())

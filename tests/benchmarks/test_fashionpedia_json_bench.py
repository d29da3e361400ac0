import json

from pipeline.cli import main


def test_bench_fashionpedia_json_reads_every_annotation_of_the_file_it_writes(capsys):
    assert main(["bench", "fashionpedia-json", "--images", "7", "--annotations", "30", "--vertices", "12"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["file"]["annotations"] == 30 and result["file"]["megabytes"] > 0
    assert result["instances"] == 30  # every polygon became a record's instance
    assert result["peak_rss_mb_after_records"] >= result["peak_rss_mb_after_load"] >= result["imports_peak_rss_mb"] > 0
    assert result["load_seconds"] > 0 and result["records_seconds"] > 0

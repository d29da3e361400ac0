import json

import yaml

from pipeline.cli import main


def small_config(path, **changes):
    values = {"family": "fashionformer", "backbone": "resnet18", "fpn_channels": 32, "hidden_dim": 32,
              "num_queries": 10, "num_stages": 1, "ffn_dim": 64, **changes}
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_flops_bench_counts_each_config_at_each_size(tmp_path, capsys):
    configs = [small_config(tmp_path / "few.yaml"), small_config(tmp_path / "many.yaml", num_queries=200)]
    assert main(["bench", "flops", "--image-sizes", "64", "128", "--configs", *configs]) == 0
    result = json.loads(capsys.readouterr().out)
    few, many = result["models"]["few"], result["models"]["many"]
    assert set(few) == {"params_m", "gflops_64", "gflops_128"}
    assert 0 < few["gflops_64"] < few["gflops_128"]
    # The queries' attention and mask products are counted, not only the backbone's convolutions.
    assert many["gflops_64"] > few["gflops_64"] and many["params_m"] > few["params_m"]

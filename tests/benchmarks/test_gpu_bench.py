import json
import math
import socket

from pipeline.benchmarks.gpu import check_config
from pipeline.cli import main
from pipeline.training.config import TrainConfig


def test_bench_gpu_smoke_trains_and_predicts_every_family_of_the_real_profile(capsys, monkeypatch):
    """From the real configs' named starts, planted (as on a lent machine without the network)."""
    tried = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: tried.append(args) or None)
    monkeypatch.setattr(socket.socket, "connect", lambda *args, **kwargs: tried.append(args) or None)
    assert main(["bench", "gpu", "--smoke", "--planted-starts"]) == 0
    output = capsys.readouterr().out
    result = json.loads(output[output.index("{\n"):])
    assert result["device"] == "cpu" and result["smoke"] and result["planted_starts"] and tried == []
    for init in ("torchvision:MaskRCNN_ResNet50_FPN_Weights.COCO_V1", "timm:tf_efficientnet_b2.in1k",
                 "torchvision:ResNet50_Weights.IMAGENET1K_V1"):
        assert f"init {init} (" in output  # each family loaded its named start
    rows = result["models"]
    assert set(rows) == {"attribute_mask_rcnn", "effdet_mask", "fashionformer"}
    assert {name: row["crop_side"] for name, row in rows.items()} == {
        "attribute_mask_rcnn": 128, "effdet_mask": 256, "fashionformer": 128}  # each config's side, shrunk
    for row in rows.values():
        assert row["steps"] == 2 and row["skipped_steps"] == 0 and row["peak_gpu_memory_gib"] is None
        assert row["train_images_per_second"] > 0 and row["predict_seconds_per_image"] > 0
        assert math.isfinite(row["loss_start"]) and math.isfinite(row["loss_end"])
    assert rows["attribute_mask_rcnn"]["lr"] == 0.02 / 16  # SGD lr 0.02 for 16 images, scaled to one image
    goal = result["goal"]
    assert goal["measured"] == rows["attribute_mask_rcnn"]["train_images_per_second"] and goal["met"] is None


def test_the_gpu_run_keeps_the_recipe_and_fits_the_warm_up_into_its_steps():
    recipe = TrainConfig(batch_size=4, accumulate=2, workers=8, warmup_steps=1000, amp_dtype="bfloat16")
    gpu = check_config(recipe, steps=300, smoke=False)
    assert gpu.warmup_steps == 60 and (gpu.batch_size, gpu.accumulate, gpu.workers, gpu.amp) == (4, 2, 8, True)
    smoke = check_config(recipe, steps=2, smoke=True)
    assert (smoke.batch_size, smoke.accumulate, smoke.workers, smoke.amp) == (1, 1, 0, False)

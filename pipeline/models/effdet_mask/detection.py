"""EfficientDet's outputs -> detections, and the RoIs the mask and attribute heads train on.

Decoding follows effdet's DetBenchPredict: `_post_process` keeps the top-scoring (anchor, class)
pairs over all levels, `decode_box_outputs` applies their box regressions to the anchors. The
NMS after it is torchvision's class-wise `batched_nms`, as in effdet's `generate_detections`,
but with the config's IoU threshold and score threshold (effdet fixes 0.5 and none) and without
its zero padding. effdet's class channel c is the project's class id c: its labeler takes ids
from 1 and subtracts 1 before the loss (see `EffDetMask`).
"""
from __future__ import annotations

import torch
from effdet.anchors import decode_box_outputs
from effdet.bench import _post_process
from torchvision.ops import batched_nms, box_iou

from pipeline.models.effdet_mask.transform import Placement


def decode(class_out: list[torch.Tensor], box_out: list[torch.Tensor], anchors: torch.Tensor, num_classes: int,
           candidates: int, placements: list[Placement], score_threshold: float, nms_threshold: float,
           keep: int) -> list[dict[str, torch.Tensor]]:
    """Per image: xyxy `boxes` in the square (clipped to the image in it), `scores`, `labels`.

    anchors: effdet's (A, 4) yxyx anchor boxes; placements: where each image lies in the square.
    """
    scores, regressions, anchor_indices, classes = _post_process(
        class_out, box_out, num_levels=len(class_out), num_classes=num_classes, max_detection_points=candidates
    )
    detections = []
    for i, placement in enumerate(placements):
        boxes = placement.clip(decode_box_outputs(regressions[i].float(), anchors[anchor_indices[i]], output_xyxy=True))
        score = scores[i, :, 0].float().sigmoid()
        confident = torch.where(score >= score_threshold)[0]
        kept = confident[batched_nms(boxes[confident], score[confident], classes[i][confident], nms_threshold)][:keep]
        detections.append({"boxes": boxes[kept], "scores": score[kept], "labels": classes[i][kept]})
    return detections


def matched_rois(detected: torch.Tensor, ground_truth: torch.Tensor, iou_threshold: float):
    """The ground-truth boxes plus the detected boxes overlapping one by `iou_threshold` or more.

    Returns (rois, index of each RoI's ground truth), as Mask R-CNN trains its mask head on
    proposals matched to ground truth (torchvision adds the ground truth to them too).
    """
    if len(ground_truth) == 0 or len(detected) == 0:
        return ground_truth, torch.arange(len(ground_truth), device=ground_truth.device)
    best_iou, best_gt = box_iou(detected, ground_truth).max(dim=1)
    overlapping = best_iou >= iou_threshold
    rois = torch.cat([ground_truth, detected[overlapping]])
    matched = torch.cat([torch.arange(len(ground_truth), device=ground_truth.device), best_gt[overlapping]])
    return rois, matched

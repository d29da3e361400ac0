"""EfficientDet-mask: EfficientDet (effdet) detections feeding a Mask R-CNN mask head and an attribute head."""

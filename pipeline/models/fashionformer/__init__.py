"""FashionFormer (ECCV 2022): query-based segmentation and attribute streams, plain PyTorch."""

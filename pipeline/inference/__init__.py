"""Inference: trained models -> scored predictions at the original image size."""

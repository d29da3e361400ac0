"""Instance segmentation models with an attribute head; build one with `factory.create_model`."""

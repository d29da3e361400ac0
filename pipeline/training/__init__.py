"""Training: data from the HDF5 cache, augmentation, the per-fold training loop, checkpoints."""

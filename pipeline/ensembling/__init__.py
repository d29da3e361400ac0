"""Cross-family ensembling of prediction files (`ensemble`) and threshold tuning on out-of-fold
predictions (`tune`)."""

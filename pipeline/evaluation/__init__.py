"""The local evaluator: AP_IoU (pycocotools), AP_IoU+F1 (FPEval) and the Kaggle score (METRICS.md)."""

"""The metrics of METRICS.md as a library (AP_IoU as pycocotools, AP_IoU+F1 as FPEval, the Kaggle
score) and the reading of prediction files they score. It sits just above `pipeline.data` and
imports nothing else of the pipeline, so that every later step can score: validation during
training, threshold tuning, and the `evaluate` and `report` commands (`pipeline.evaluation`)."""

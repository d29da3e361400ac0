"""Kaggle submission: write the competition's CSV from scored predictions, and check one."""

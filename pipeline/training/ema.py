"""An exponential moving average of a model's weights (`train.ema_decay`), as timm's ModelEmaV3 keeps.

After the n-th optimizer step every float tensor of the state (parameters and batch-norm
statistics) moves towards the trained model's: ema += (1 - d) * (model - ema), with the decay
warmed up as d = min(ema_decay, (1 + n) / (10 + n)) (TensorFlow's ExponentialMovingAverage with
num_updates), so the random initialisation fades within the first steps. Integer buffers are copied.
"""
from __future__ import annotations

import copy

import torch


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    def rate(self, updates: int) -> float:
        return min(self.decay, (1 + updates) / (10 + updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, updates: int) -> None:
        """Move towards `model` after its `updates`-th optimizer step (counted from 1)."""
        decay = self.rate(updates)
        for average, current in zip(self.module.state_dict().values(), model.state_dict().values()):
            if average.is_floating_point():
                average.lerp_(current, 1 - decay)
            else:
                average.copy_(current)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)

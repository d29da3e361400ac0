"""A one-parameter-vector model and data for engine tests: light to import in spawned DDP processes."""
import os

import torch

from pipeline.training import engine
from pipeline.training.config import TrainConfig


class Linear(torch.nn.Module):
    """A 'detector' whose loss is the mean over its images: one step on 4 images has the gradient of
    2 processes x 2 accumulated micro-batches of 1 image."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([1.0, -1.0, 0.5]))

    def forward(self, images, targets):
        x = torch.stack([image.mean(dim=(1, 2)) for image in images])
        y = torch.stack([target["y"] for target in targets])
        return {"loss_linear": ((x @ self.weight - y) ** 2).mean()}


class Points(torch.utils.data.Dataset):
    epoch = 0

    def __len__(self):
        return 8

    def __getitem__(self, index):
        generator = torch.Generator().manual_seed(index)
        return torch.rand(3, 2, 2, generator=generator), {"y": torch.rand((), generator=generator)}


LINEAR = TrainConfig(epochs=2, batch_size=1, accumulate=2, workers=0, optimizer="sgd", momentum=0.0, lr=0.5,
                     warmup_steps=0, schedule="constant", clip_grad_norm=0, ema_decay=0.5, checkpoint_every=100)


def train_linear_rank(settings, job):
    """`train_linear` as `launch.run_distributed` calls a command: (settings, arguments)."""
    train_linear(job)


def train_linear(job):
    """One process's part (ranks from the environment, as `launch` or torchrun set them); its weights to rank<R>.pt."""
    out_dir, cfg = job
    model = Linear()
    engine.train(model, Points(), cfg, out_dir, run_key="linear", progress=False)
    torch.save(model.state_dict(), out_dir / f"rank{os.environ.get('RANK', '0')}.pt")


def see_own_data(settings, args):
    """A DDP process whose node sees its own files: each rank reports another cache."""
    rank, world, _ = engine.distributed_setup()
    engine.same_on_every_rank(f"cache{rank}.h5", world, "the cache")

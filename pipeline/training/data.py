"""Training data: cache samples -> augmented tensors and targets, in a resumable order.

The order of an epoch and every sample's augmentation are functions of (seed, epoch, position),
so a resumed run sees exactly the batches the killed one would have seen.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from pipeline.data.ontology import Ontology
from pipeline.training import transforms


class EpochSampler(torch.utils.data.Sampler):
    """A seeded permutation per epoch, split across DDP ranks, skipping `skip` leading items.

    Every rank gets the same number of items (the permutation is padded by wrapping around), so
    all ranks run the same number of steps, as DDP requires.
    """

    def __init__(self, size: int, seed: int, epoch: int, rank: int = 0, world: int = 1, skip: int = 0):
        self.size, self.seed, self.epoch = size, seed, epoch
        self.rank, self.world, self.skip = rank, world, skip

    def per_rank(self) -> int:
        return math.ceil(self.size / self.world)

    def __iter__(self):
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100003 + self.epoch))
        order = order.repeat(math.ceil(self.per_rank() * self.world / self.size))[: self.per_rank() * self.world]
        return iter(order[self.rank :: self.world][self.skip :].tolist())

    def __len__(self) -> int:
        return self.per_rank() - self.skip


class TrainDataset(torch.utils.data.Dataset):
    """Images of the given cache indices with augmented masks, boxes, classes and attributes."""

    def __init__(self, reader, indices, ontology: Ontology, augment: transforms.AugmentConfig, seed: int):
        self.reader, self.indices, self.ontology = reader, list(indices), ontology
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.transform = transforms.train_transform(augment)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int):
        sample = self.reader[self.indices[position]]
        seed = int(np.random.SeedSequence([self.seed, self.epoch, position]).generate_state(1)[0])
        image, masks, kept = transforms.apply(
            self.transform, sample.image, sample.masks, self.augment.min_instance_pixels, seed
        )
        attributes = [sample.attributes[k] for k in kept]
        target = {
            "boxes": torch.from_numpy(transforms.boxes_from_masks(masks)),
            "labels": torch.as_tensor(np.asarray(sample.class_ids)[kept], dtype=torch.int64),
            "masks": torch.from_numpy(masks),
            "attributes": torch.from_numpy(
                np.stack([self.ontology.attributes_to_vector(a) for a in attributes])
                if attributes else np.zeros((0, self.ontology.num_attributes), np.float32)
            ),
            "has_attributes": torch.tensor([len(a) > 0 for a in attributes], dtype=torch.bool),
        }
        return image_to_tensor(image), target


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H,W,3) uint8 -> (3,H,W) float in 0..1."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)


def collate(batch):
    """A dataset item is one (image, target) sample or a list of them (a consumer photo with a shop photo)."""
    images, targets = zip(*(sample for item in batch for sample in (item if isinstance(item, list) else [item])))
    return list(images), list(targets)

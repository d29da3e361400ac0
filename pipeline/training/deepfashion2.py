"""DeepFashion2 training data: cache samples (`pipeline.data.deepfashion2.cache`) -> Match R-CNN's
augmented tensors and targets, for the same engine and resumable order as `data.TrainDataset`.

Match R-CNN's pair loss needs consumer and shop photos of one product in the same batch, which a
random order of single images rarely gives. With `partners`, each item is a list of two samples:
the image and a photo of the other source with the same pair_id (drawn from the seed, epoch and
position, so a resumed run sees the same ones); `data.collate` flattens the lists, so a batch of
`batch_size` items holds up to twice as many images. `images_per_item` says how many on average,
so that the lr scaling and the epochs count images, as the paper's batch of 16 images does.

Augmentation is the Fashionpedia pipeline's (`transforms`), with the annotated boxes and the
landmarks moved along, boxes clipped to the crop and landmarks it removes marked not labelled.
A horizontal flip (probability `hflip`, drawn from the sample's seed) also moves each landmark to
its mirror slot (`annotations.mirror_order`): the image-left shoulder of the flipped garment is
the slot of the image-left shoulder, as an annotator would have labelled the flipped photo.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from pipeline.data.deepfashion2.annotations import CATEGORY_BY_ID, NUM_SLOTS, mirror_order
from pipeline.training import transforms
from pipeline.training.data import image_to_tensor


class Df2TrainDataset(torch.utils.data.Dataset):
    """Images of the given DeepFashion2 cache indices, with Match R-CNN's targets (see MatchRCNN)."""

    def __init__(self, reader, indices, augment: transforms.AugmentConfig, seed: int, partners: bool = True):
        self.reader, self.indices, self.augment, self.seed, self.epoch = reader, list(indices), augment, seed, 0
        # Flips are done here, where the landmarks' slots are known, not by the shared transform.
        self.transform = transforms.train_transform(dataclasses.replace(augment, hflip=0.0), keypoints=True)
        self.partners = partner_table(reader, self.indices) if partners else None
        with_partner = sum(map(bool, self.partners)) if self.partners else 0
        self.images_per_item = 1 + with_partner / max(len(self.indices), 1)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int):
        seed = int(np.random.SeedSequence([self.seed, self.epoch, position]).generate_state(1)[0])
        sample = self.sample(self.indices[position], seed)
        if self.partners is None or not self.partners[position]:
            return sample
        choices = self.partners[position]
        partner = choices[np.random.default_rng(seed).integers(len(choices))]
        return [sample, self.sample(partner, (seed + 1) % 2**32)]

    def sample(self, index: int, seed: int):
        """One cache image, augmented, and its target."""
        sample = self.reader[index]
        counts = [len(points) for points in sample.landmarks]
        landmarks = np.concatenate(sample.landmarks) if counts else np.zeros((0, 3), np.float32)
        # The annotated boxes (the evaluation's ground truth, which can reach past the polygons) move
        # as their corners: the transforms only scale, pad and crop.
        corners = sample.boxes.reshape(-1, 2)
        self.transform.set_random_seed(seed)
        out = self.transform(image=sample.image, masks=sample.masks if len(sample.masks) else
                             np.zeros((0, *sample.image.shape[:2]), np.uint8),
                             keypoints=np.concatenate([landmarks[:, :2], corners]))
        height, width = out["image"].shape[:2]
        masks = np.asarray(out["masks"], np.uint8).reshape(-1, height, width)
        moved = np.asarray(out["keypoints"], np.float32).reshape(-1, 2)
        boxes = np.clip(moved[len(landmarks):].reshape(-1, 4), 0, np.array([width, height] * 2, np.float32))
        landmarks = np.c_[moved[: len(landmarks)], landmarks[:, 2]]
        image = out["image"]
        if np.random.default_rng([seed, 1]).random() < self.augment.hflip:
            image, masks = image[:, ::-1], masks[:, :, ::-1]
            boxes = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
            landmarks = landmarks[mirror_rows(sample.category_ids, counts)]
            landmarks[:, 0] = width - landmarks[:, 0]
        outside = (landmarks[:, 0] < 0) | (landmarks[:, 1] < 0) | (landmarks[:, 0] >= width) | (
            landmarks[:, 1] >= height)
        landmarks[outside | (landmarks[:, 2] == 0)] = 0
        per_item = np.split(landmarks, np.cumsum(counts)[:-1]) if counts else []
        kept = np.flatnonzero((masks.reshape(len(masks), -1).sum(axis=1) >= self.augment.min_instance_pixels)
                              & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
        items = len(kept)
        target = {
            "boxes": torch.from_numpy(boxes[kept]),
            "labels": torch.as_tensor(sample.category_ids[kept] - 1, dtype=torch.int64),
            "masks": torch.from_numpy(masks[kept]),
            "landmarks": torch.from_numpy(slot_layout([per_item[k] for k in kept], sample.category_ids[kept])),
            "styles": torch.as_tensor(sample.styles[kept], dtype=torch.int64),
            "pair_ids": torch.full((items,), sample.pair_id, dtype=torch.int64),
            "shop": torch.full((items,), sample.source == "shop", dtype=torch.bool),
        }
        return image_to_tensor(image), target


def slot_layout(landmarks: list[np.ndarray], category_ids) -> np.ndarray:
    """(M, 294, 3): each item's landmarks in its category's block of the 294 slots, zeros elsewhere."""
    out = np.zeros((len(landmarks), NUM_SLOTS, 3), np.float32)
    for row, (points, category_id) in enumerate(zip(landmarks, category_ids)):
        first = CATEGORY_BY_ID[int(category_id)].first_slot
        out[row, first : first + len(points)] = points
    return out


def mirror_rows(category_ids, counts: list[int]) -> np.ndarray:
    """Row order that takes the items' concatenated landmarks to those of the flipped image."""
    starts = np.cumsum([0, *counts[:-1]])
    return np.concatenate([start + mirror_order(int(c)) for start, c in zip(starts, category_ids)] or [np.zeros(0, int)])


def partner_table(reader, indices: list[int]) -> list[list[int]]:
    """Per position: the cache indices among `indices` of the other source with the same pair_id."""
    pair_ids = reader.index["pair_id"][indices]
    sources = reader.index["source"][indices]
    by_key: dict[tuple[int, int], list[int]] = {}
    for index, pair_id, source in zip(indices, pair_ids.tolist(), sources.tolist()):
        by_key.setdefault((pair_id, source), []).append(index)
    return [by_key.get((pair_id, 1 - source), []) for pair_id, source in zip(pair_ids.tolist(), sources.tolist())]

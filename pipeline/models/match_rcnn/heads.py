"""Match R-CNN's landmark stream and match network, grafted onto torchvision's `RoIHeads`.

Landmarks: 8 3x3 convs (torchvision's `KeypointRCNNHeads`), then the notes' two deconvolutions
(Detectron's KRCNN.USE_DECONV: a stride-2 deconvolution and ReLU, then the stride-2 output
deconvolution), heatmaps at 4x the RoI size; or, `landmark_deconvolutions: 1`, torchvision's
predictor (the output deconvolution, then 2x bilinear upsampling), the same heatmap size.
Cross-entropy over each landmark's heatmap pixels as keypoint R-CNN. The predictor has one output channel per slot of DeepFashion2's 294, but a
RoI's heatmaps are computed only for the slots of its category (the ground truth's in training,
the predicted one in inference): the other 255+ slots neither cost nor learn anything there.
Heatmaps come out compact: (RoIs, MAX_LANDMARKS, H, W), the category's landmarks in their order,
padded channels never valid.

Match network (the paper's MN): a feature extractor (4 convs, global average pooling, one fc)
on each item's RoI features, and a similarity net: (a - b)^2 -> fc -> sigmoid, the probability
that two items are the same product. Training embeds the ground-truth items and scores the
consumer-shop pairs of the batch with binary cross-entropy: positives share pair_id and style > 0.
`match_network: published` is that network as the notes describe it. `residual` adds three
choices meant to make what it learns hold for products it never saw on a set of a few hundred
pairs: the fc's output is a residual on the pooled RoI feature, starting at zero; the sum is
scaled to unit length, so squared distances stay in 0..4; and the similarity fc's weights are
held negative, so the logit is a bias minus a weighted squared distance.

Everything runs inside `RoIHeads.forward`, in the resized image frame, before boxes are scaled back.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads, heatmaps_to_keypoints, keypoints_to_heatmap

from pipeline.data.deepfashion2.annotations import CATEGORIES, NUM_SLOTS
from pipeline.models.attribute_mask_rcnn.heads import GraftedRoIHeads

MAX_LANDMARKS = max(c.landmarks for c in CATEGORIES)
# Indexed by torchvision's label (= DeepFashion2 category_id 1..13; row 0, background, unused).
FIRST_SLOT = torch.tensor([0] + [c.first_slot for c in CATEGORIES])
LANDMARK_COUNT = torch.tensor([0] + [c.landmarks for c in CATEGORIES])


def category_slots(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, MAX_LANDMARKS) global slot of each of a category's landmarks (padding repeats the last),
    and whether the position is one of the category's landmarks."""
    position = torch.arange(MAX_LANDMARKS, device=labels.device)
    count = LANDMARK_COUNT.to(labels.device)[labels][:, None]
    slots = FIRST_SLOT.to(labels.device)[labels][:, None] + torch.minimum(position, (count - 1).clamp(min=0))
    return slots, position < count


def compact_landmarks(landmarks: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(M, 294, 3) slot layout -> (M, MAX_LANDMARKS, 3) the category's block; padding not labelled (v = 0)."""
    slots, inside = category_slots(labels)
    compact = torch.gather(landmarks, 1, slots[..., None].expand(-1, -1, 3)).clone()
    compact[..., 2] *= inside
    return compact


def spread_landmarks(compact: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(N, MAX_LANDMARKS, 3) in category order -> (N, 294, 3) slot layout, zero outside the category's block."""
    slots, inside = category_slots(labels)
    out = compact.new_zeros((len(compact), NUM_SLOTS, 3))
    rows = torch.arange(len(compact), device=compact.device)[:, None].expand_as(slots)
    out[rows[inside], slots[inside]] = compact[inside]
    return out


class LandmarkPredictor(KeypointRCNNPredictor):
    """The output deconvolution over the 294 slots, evaluated per RoI on its category's slots; before
    it, with `deconvolutions` 2, a stride-2 deconvolution and ReLU, and after it, with 1, torchvision's
    2x bilinear upsampling. Heatmaps are 4x the features' size either way."""

    def __init__(self, in_channels: int, deconvolutions: int = 2):
        super().__init__(in_channels, NUM_SLOTS)
        self.deconvolutions = deconvolutions
        self.hidden = None
        if deconvolutions == 2:
            self.hidden = nn.ConvTranspose2d(in_channels, in_channels, 4, stride=2, padding=1)
            nn.init.kaiming_normal_(self.hidden.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(self.hidden.bias)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) features and (N,) categories -> (N, MAX_LANDMARKS, 4S, 4S) heatmap logits."""
        if self.hidden is not None:
            x = F.relu(self.hidden(x))
        deconv = self.kps_score_lowres
        size = (x.shape[-2] * 2, x.shape[-1] * 2)
        out = x.new_zeros((len(x), MAX_LANDMARKS, *size))
        for label in labels.unique().tolist():
            rows = labels == label
            first, count = int(FIRST_SLOT[label]), int(LANDMARK_COUNT[label])
            out[rows, :count] = F.conv_transpose2d(x[rows], deconv.weight[:, first : first + count],
                                                   deconv.bias[first : first + count], stride=2, padding=1)
        if not len(x):  # still in the graph: DDP expects every parameter to get a gradient
            out = out + (deconv.weight.sum() + deconv.bias.sum()) * 0 + x.sum() * 0
        if self.hidden is not None:
            return out
        return F.interpolate(out, scale_factor=float(self.up_scale), mode="bilinear", align_corners=False)


def landmark_loss(logits: torch.Tensor, rois: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """Keypoint R-CNN's loss: cross-entropy over the heatmap pixels of every labelled landmark inside its RoI.

    logits (P, MAX_LANDMARKS, H, H); rois (P, 4); landmarks (P, MAX_LANDMARKS, 3) compact, of each
    RoI's ground truth. No labelled landmark: an exact 0 that stays in the graph.
    """
    size = logits.shape[-1]
    targets, valid = keypoints_to_heatmap(landmarks, rois, size)
    valid = valid.bool()
    if not valid.any():
        return logits.sum() * 0
    return F.cross_entropy(logits.flatten(2)[valid], targets[valid])


def landmarks_from_heatmaps(logits: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(N, MAX_LANDMARKS, H, H) logits over `boxes` -> (N, MAX_LANDMARKS, 3): x, y and the heatmap logit
    at the peak (torchvision's keypoint score)."""
    xy, scores = heatmaps_to_keypoints(logits, boxes)
    return torch.cat([xy[..., :2], scores[..., None]], dim=-1)


MATCH_NETWORKS = ("published", "residual")


class MatchHead(nn.Module):
    """MN's feature extractor (4 convs, pooling, fc) and its similarity net ((a - b)^2, fc, sigmoid).

    `published`: the embedding is the fc's output and the similarity fc is free, initialised as
    Detectron initialises hidden and output fc layers (Xavier; Gaussian, std 0.01). `residual`: see
    the module docstring.
    """

    def __init__(self, in_channels: int, channels: int, layers: int, network: str = "published"):
        super().__init__()
        if network not in MATCH_NETWORKS:
            raise ValueError(f"match network must be one of {MATCH_NETWORKS}, not {network!r}")
        self.residual = network == "residual"
        convs = []
        for k in range(layers):
            convs += [nn.Conv2d(in_channels if k == 0 else channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*convs)
        self.embed = nn.Linear(channels, in_channels)
        self.similarity = nn.Linear(in_channels, 1)
        nn.init.zeros_(self.embed.bias)
        nn.init.zeros_(self.similarity.bias)
        if self.residual:
            nn.init.zeros_(self.embed.weight)
            # Distance weights of 5 (softplus(5)): logits from 0 (same item) to -20 (opposite unit vectors).
            nn.init.constant_(self.similarity.weight, 5.0)
        else:
            nn.init.xavier_uniform_(self.embed.weight)
            nn.init.normal_(self.similarity.weight, std=0.01)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) RoI features -> (N, C) item features. `residual`: the pooled RoI feature plus the
        fc's output, at unit length; the fc starts at zero, so training starts from the distance between
        pooled (pretrained) features, which already tells garments apart by colour and texture."""
        embedding = self.embed(self.convs(features).mean(dim=(2, 3)))
        if not self.residual:
            return embedding
        return F.normalize(features.mean(dim=(2, 3)) + embedding, dim=1)

    def distance_weights(self) -> torch.Tensor:
        """The fc's weights on (a - b)^2. `residual` holds them negative (-softplus of the parameter):
        items closer in any dimension are more alike, where a free sign lets a few training pairs
        reward difference in some dimensions, a rule that holds only for the training products."""
        weights = self.similarity.weight[0]
        return -F.softplus(weights) if self.residual else weights

    def pair_logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Similarity logits of the pairs (a[i], b[i])."""
        return (a - b) ** 2 @ self.distance_weights() + self.similarity.bias[0]

    def logit_matrix(self, queries: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
        """(Q, G) similarity logits of every query against every gallery item, without (Q, G, D) tensors:
        w . (a - b)^2 = w . a^2 - 2 (w * a) . b + w . b^2."""
        w, bias = self.distance_weights(), self.similarity.bias[0]
        return (queries**2 @ w)[:, None] - 2 * (queries * w) @ gallery.T + (gallery**2 @ w)[None] + bias


def sample_pairs(shop: torch.Tensor, pair_ids: torch.Tensor, styles: torch.Tensor,
                 negatives_per_positive: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(consumer rows, shop rows, 0/1 labels) of the batch's consumer-shop item pairs: every positive
    (same pair_id, same style > 0) and up to `negatives_per_positive` times as many negatives (at least
    that many), drawn at random."""
    consumer_rows, shop_rows = torch.nonzero(~shop[:, None] & shop[None], as_tuple=True)
    positive = (pair_ids[consumer_rows] == pair_ids[shop_rows]) & (styles[consumer_rows] == styles[shop_rows]) & (
        styles[consumer_rows] > 0)
    negatives = torch.nonzero(~positive)[:, 0]
    keep = negatives_per_positive * max(int(positive.sum()), 1)
    negatives = negatives[torch.randperm(len(negatives), device=negatives.device)[:keep]]
    chosen = torch.cat([torch.nonzero(positive)[:, 0], negatives])
    return consumer_rows[chosen], shop_rows[chosen], positive[chosen].float()


class MatchRoIHeads(GraftedRoIHeads):
    """torchvision's box and mask heads, unchanged, plus the landmark stream and the match network."""

    def __init__(self, heads: RoIHeads, landmark_roi_pool, landmark_head: nn.Module,
                 landmark_predictor: LandmarkPredictor, match_roi_pool, match_head: MatchHead,
                 negatives_per_positive: int):
        super().__init__(heads)
        # Not torchvision's keypoint attributes: the parent would run its own 294-slot keypoint branch.
        self.landmark_roi_pool, self.landmark_head, self.landmark_predictor = (
            landmark_roi_pool, landmark_head, landmark_predictor)
        self.match_roi_pool, self.match_head = match_roi_pool, match_head
        self.negatives_per_positive = negatives_per_positive

    def extra_losses(self, features, samples, image_shapes, targets):
        sampled, matched_idxs, labels, _ = samples
        return {"loss_landmarks": self._landmark_loss(features, sampled, matched_idxs, labels, image_shapes, targets),
                "loss_pair": self._pair_loss(features, image_shapes, targets)}

    def extend_detections(self, features, result, image_shapes):
        boxes = [r["boxes"] for r in result]
        labels = torch.cat([r["labels"] for r in result])
        counts = [len(b) for b in boxes]
        landmarks = self._landmark_logits(features, boxes, labels, image_shapes)
        embeddings = self.match_head(self.match_roi_pool(features, boxes, image_shapes))
        for r, b, logits, e in zip(result, boxes, landmarks.split(counts), embeddings.split(counts)):
            r["landmarks"] = landmarks_from_heatmaps(logits, b)
            r["embeddings"] = e

    def _landmark_logits(self, features, boxes, labels, image_shapes) -> torch.Tensor:
        pooled = self.landmark_roi_pool(features, boxes, image_shapes)
        return self.landmark_predictor(self.landmark_head(pooled), labels)

    def _landmark_loss(self, features, sampled, matched_idxs, labels, image_shapes, targets) -> torch.Tensor:
        """Over the positive RoIs, against their ground truth's landmarks in its category's slots."""
        rois, gt_landmarks, gt_labels = [], [], []
        for boxes, matched, label, target in zip(sampled, matched_idxs, labels, targets):
            positive = label > 0
            rois.append(boxes[positive])
            gt_labels.append(label[positive])
            gt_landmarks.append(target["landmarks"][matched[positive]])
        gt_labels = torch.cat(gt_labels)
        logits = self._landmark_logits(features, rois, gt_labels, image_shapes)
        return landmark_loss(logits, torch.cat(rois), compact_landmarks(torch.cat(gt_landmarks), gt_labels))

    def _pair_loss(self, features, image_shapes, targets) -> torch.Tensor:
        """BCE over the batch's sampled consumer-shop pairs of ground-truth items; none: an exact 0 in the graph."""
        embeddings = self.match_head(self.match_roi_pool(features, [t["boxes"] for t in targets], image_shapes))
        consumer, shop, labels = sample_pairs(*(torch.cat([t[k] for t in targets]) for k in ("shop", "pair_ids",
                                                                                          "styles")),
                                              self.negatives_per_positive)
        logits = self.match_head.pair_logits(embeddings[consumer], embeddings[shop])
        if not len(labels):
            return logits.sum() + embeddings.sum() * 0
        return F.binary_cross_entropy_with_logits(logits, labels)

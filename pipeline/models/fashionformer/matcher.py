"""Hungarian matching of queries to ground-truth instances on class + mask costs.

Costs are (N queries, M instances) matrices. Target masks may be soft (the fraction of each
low-resolution pixel an instance covers); the costs are linear in the targets, exact for 0/1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

EPSILON = 1e-12


def focal_terms(logits: torch.Tensor, alpha: float, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-element focal loss if the target were 1, and if it were 0."""
    p = logits.sigmoid()
    q = 1 - p
    positive = -alpha * q.pow(gamma) * p.clamp(min=EPSILON).log()
    negative = -(1 - alpha) * p.pow(gamma) * q.clamp(min=EPSILON).log()
    return positive, negative


def bce_terms(logits: torch.Tensor, alpha: float, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-element binary cross-entropy if the target were 1, and if it were 0 (alpha, gamma unused)."""
    return F.softplus(-logits), F.softplus(logits)


# The mask pixel loss (`mask_loss` of the config) -> its per-element terms.
PIXEL_TERMS = {"focal": focal_terms, "bce": bce_terms}


def class_cost(class_logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0,
               kind: str = "focal"):
    """(N, C) logits, (M,) labels -> (N, M): with focal classes how much more the focal loss is if
    query n takes label m; with softmax classes (C + 1 logits, the last 'no object') minus the
    probability of label m, as DETR and Mask2Former match."""
    if kind == "softmax":
        return -class_logits.softmax(-1)[:, labels]
    positive, negative = focal_terms(class_logits, alpha, gamma)
    return (positive - negative)[:, labels]


def mask_cost(mask_logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0,
              kind: str = "focal"):
    """(N, P) logits, (M, P) targets in 0..1 -> (N, M) pixel loss (`kind`) averaged over the P pixels."""
    positive, negative = PIXEL_TERMS[kind](mask_logits, alpha, gamma)
    # sum_p pos * t + neg * (1 - t) = (pos - neg) . t + sum_p neg
    return ((positive - negative) @ targets.T + negative.sum(1, keepdim=True)) / mask_logits.shape[1]


def dice_cost(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N, P) logits, (M, P) targets in 0..1 -> (N, M) dice loss, 1 - 2|A.B| / (|A| + |B|), smoothed by 1."""
    p = mask_logits.sigmoid()
    return 1 - (2 * p @ targets.T + 1) / (p.sum(1)[:, None] + targets.sum(1)[None, :] + 1)


def hungarian_match(
    mask_logits: torch.Tensor, targets: torch.Tensor, class_logits: torch.Tensor | None = None,
    labels: torch.Tensor | None = None, *, class_weight: float = 1.0, mask_weight: float = 1.0,
    dice_weight: float = 1.0, alpha: float = 0.25, gamma: float = 2.0, mask_kind: str = "focal",
    class_kind: str = "focal",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(query indices, instance indices) of the cheapest one-to-one assignment.

    mask_logits (N, P), targets (M, P); without class_logits (the initial masks, which have no
    classes) the cost is the masks' alone. Every instance gets a query when M <= N.
    """
    with torch.no_grad():
        cost = mask_weight * mask_cost(mask_logits, targets, alpha, gamma, mask_kind)
        cost = cost + dice_weight * dice_cost(mask_logits, targets)
        if class_logits is not None:
            cost = cost + class_weight * class_cost(class_logits, labels, alpha, gamma, class_kind)
        rows, cols = linear_sum_assignment(torch.nan_to_num(cost.float(), nan=1e6).cpu().numpy())
    return tuple(torch.as_tensor(i, dtype=torch.int64, device=mask_logits.device) for i in (rows, cols))

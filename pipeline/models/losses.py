"""Multi-label attribute losses shared by every model family.

Both kinds reduce the same way: summed over the attributes of a row, averaged over the rows (RoIs,
queries) that have attribute annotations. The loss weight thus means the same for focal and BCE and
does not depend on how many rows a batch has. With no rows the loss is an exact 0 that still
belongs to the graph, so `backward()` works on batches without annotated attributes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

LOSS_KINDS = ("focal", "bce")


def attribute_loss(
    logits: torch.Tensor, targets: torch.Tensor, kind: str = "focal", alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Loss of (R, A) attribute logits against (R, A) 0/1 targets.

    `kind` 'focal' (default; the iMaterialist 2020 report found it far better than BCE on the
    sparse attribute labels) or 'bce'. `alpha` weights positives (negatives get 1 - alpha; a
    negative alpha disables the weighting), `gamma` down-weights easy examples; both focal only.
    """
    targets = targets.to(logits.dtype)
    if kind == "focal":
        per_element = sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="none")
    elif kind == "bce":
        per_element = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    else:
        raise ValueError(f"attribute loss must be one of {LOSS_KINDS}, not {kind!r}")
    return per_element.sum() / max(logits.shape[0], 1)

"""Multi-label attribute losses shared by every model family.

Both kinds reduce the same way, over the rows (RoIs, queries) that have attribute annotations:
`rows` sums a row's attributes and averages over the rows; `elements` averages over every (row,
attribute) element, as a sigmoid cross-entropy with PyTorch's and MMDetection's default 'mean'
reduction does (the official FashionFormer code's attribute loss) and so 1/num_attributes of
`rows`. Either way the loss weight means the same for focal and BCE and does not depend on how many
rows a batch has. With no rows the loss is an exact 0 that still belongs to the graph, so
`backward()` works on batches without annotated attributes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

LOSS_KINDS = ("focal", "bce")
NORMALISATIONS = ("rows", "elements")


def attribute_loss(
    logits: torch.Tensor, targets: torch.Tensor, kind: str = "focal", alpha: float = 0.25, gamma: float = 2.0,
    normalisation: str = "rows",
) -> torch.Tensor:
    """Loss of (R, A) attribute logits against (R, A) 0/1 targets.

    `kind` 'focal' (default; the iMaterialist 2020 report found it far better than BCE on the
    sparse attribute labels) or 'bce'. `alpha` weights positives (negatives get 1 - alpha; a
    negative alpha disables the weighting), `gamma` down-weights easy examples; both focal only.
    `normalisation`: 'rows' or 'elements' (see the module's docstring).
    """
    targets = targets.to(logits.dtype)
    if kind == "focal":
        per_element = sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="none")
    elif kind == "bce":
        per_element = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    else:
        raise ValueError(f"attribute loss must be one of {LOSS_KINDS}, not {kind!r}")
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"attribute normalisation must be one of {NORMALISATIONS}, not {normalisation!r}")
    per_row = per_element.sum() / max(logits.shape[0], 1)
    return per_row / logits.shape[1] if normalisation == "elements" else per_row

"""`strength`: one number from 0 (the photo) to 1 (all painting) that means about the same on every pair.

Fixed loss weights strike a different balance on every photo and painting: at the default's style weight 2
the content distance ran from 0.28 (astronaut + Starry Night) to 0.54 (brick + Turner). A strength S sets
the style weight (content weight 1) to

    MIDDLE * (S / (1 - S)) ** SLOPE * (disturbance / REFERENCE) ** -EXPONENT

where `disturbance` is measured before the run: how far the photo's content moves when the photo takes one
small step down the painting's style gradient. A pair whose content gives way easily gets less style weight.
S = 0.5 on a pair of average disturbance is the default preset's balance (style weight 2); S = 0 leaves
only the content loss, S = 1 only the style loss. EXPONENT and REFERENCE were fitted on the three shared
pairs and checked on four held-out ones (benchmarks/strength.py, benchmarks/results/strength.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image

from . import images
from .perceptual import Perceptual

MIDDLE = 2.0  # style weight at strength 0.5 on a pair of average disturbance: the default preset's
SLOPE = math.log(4) / math.log(3)  # strength 0.25 / 0.75: a quarter / four times MIDDLE before calibration
EXPONENT = 0.4  # PROVISIONAL
REFERENCE = 0.148  # PROVISIONAL
SIDE = 256  # the disturbance is measured at the run's size up to this (the size it was fitted at)
STEP = 0.01 * 255  # root-mean-square size of the probing step, in pixels


def weights(strength: float, disturbance: float = REFERENCE) -> tuple[float, float]:
    """(content weight, style weight) for `strength` on a pair of this `disturbance`."""
    if strength >= 1:
        return 0.0, MIDDLE
    ratio = MIDDLE * (strength / (1 - strength)) ** SLOPE * (disturbance / REFERENCE) ** -EXPONENT
    return 1.0, ratio


def disturbance(criterion: Perceptual, content: Image.Image, styles: Sequence[Image.Image],
                blend: Sequence[float]) -> float:
    """The relative content distance of the photo after one step of STEP pixels (RMS) down the style loss's
    gradient: one forward and backward pass and one forward pass at up to SIDE pixels."""
    side = min(SIDE, criterion.config.size or max(content.size))
    photo = images.to_tensor(images.fit(content, side), criterion.device)
    terms = criterion.terms(photo, styles, blend, content, weights=(1.0, 1.0))
    x = photo.clone().requires_grad_(True)
    criterion.evaluate(x, terms)["style"].backward()
    grad = x.grad
    step = grad * (STEP * math.sqrt(grad.numel()) / grad.norm().clamp_min(1e-30))
    with torch.no_grad():
        return float(criterion.evaluate((photo - step).clamp(0, 255), terms)["content"])

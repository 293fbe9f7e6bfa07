"""Whitening and colouring of channels: give one picture's (or feature map's) channels the mean and
covariance of another's.

Colour transfer does it on the three colour channels (`images.match_histogram`, Gatys et al. 2016's
histogram matching); the arbitrary-style network does it on VGG features (Li et al. 2017's WCT,
feedforward/wct.py). One implementation serves both.
"""

from __future__ import annotations

import torch

# Covariance regularisation, relative to the mean variance of the features: keeps whitening finite for a
# flat or tiny picture (a one-colour painting has no covariance at all) at no visible cost otherwise.
EPS = 1e-5


def pixels(f: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) features as an (HW, C) float32 matrix (a free view of channels-last features)."""
    return f[0].permute(1, 2, 0).reshape(-1, f.shape[1]).float()


def statistics(f: torch.Tensor, power: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (C,) and covariance ** power (C, C) of (1, C, H, W) features: power -1/2 whitens, 1/2 colours.

    The covariance is regularised (EPS) and its eigenvalues floored, so a flat picture gives finite
    matrices; the C x C part runs in float64 (C is at most 512)."""
    x = pixels(f)
    n = max(1, x.shape[0] - 1)
    mean = x.mean(0)
    cov = (x.T @ x).double() / n - torch.outer(mean, mean).double() * (x.shape[0] / n)
    eps = EPS * cov.diagonal().mean().clamp_min(1e-6)
    vals, vecs = torch.linalg.eigh(cov + eps * torch.eye(len(cov), dtype=cov.dtype, device=cov.device))
    root = vecs @ torch.diag(vals.clamp_min(eps) ** power) @ vecs.T
    return mean, root.float()


def transform(f: torch.Tensor, style: tuple[torch.Tensor, torch.Tensor], strength: float) -> torch.Tensor:
    """Whiten `f` (1, C, H, W), colour it with the style's (mean, covariance ** 1/2), and mix the result
    with `f` by `strength`: one affine map of the channels, applied in one matrix product."""
    mean, whiten = statistics(f, -0.5)
    style_mean, colour = style
    wct = colour @ whiten
    a = strength * wct + (1 - strength) * torch.eye(len(wct), device=wct.device)
    b = strength * (style_mean - wct @ mean)
    _, c, h, w = f.shape
    return torch.addmm(b, pixels(f), a.T).reshape(1, h, w, c).permute(0, 3, 1, 2)

"""Loss terms as small composable pieces.

A term knows which feature layers it reads and turns (features, image) into one scalar. The engine
sums `weight * term` over whatever terms it is given, so video can add a temporal term (and later
features other terms) without the engine knowing what they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

Features = Mapping[str, torch.Tensor]


class _Gram(torch.autograd.Function):
    """F F^T over (B, C, H, W) features, read in whichever memory layout they already have.

    Channels-last features are read as a (B, HW, C) matrix, a free view: against the (B, C, HW) view
    this made the ReLU backward and the copies behind the style layers 4-5x cheaper (profile, 256 px).
    Autograd's own bmm backward takes two products and adds them (M is used twice); here it is one
    product with the symmetrised incoming gradient, returned in the features' layout.
    """

    @staticmethod
    def _matrix(f: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """(B, HW, C) when channels-last (a free view; F F^T = M^T M), else (B, C, HW) (F F^T = M M^T)."""
        b, c, h, w = f.shape
        if c > 1 and f.is_contiguous(memory_format=torch.channels_last):
            return f.permute(0, 2, 3, 1).reshape(b, h * w, c), True
        return f.reshape(b, c, h * w), False

    @staticmethod
    def forward(ctx, f: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(f)
        m, rows = _Gram._matrix(f)
        return (torch.bmm(m.transpose(1, 2), m) if rows else torch.bmm(m, m.transpose(1, 2))).float()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (f,) = ctx.saved_tensors
        m, rows = _Gram._matrix(f)
        sym = (grad + grad.transpose(1, 2)).to(f.dtype)
        b, c, h, w = f.shape
        if rows:
            return torch.bmm(m, sym).view(b, h, w, c).permute(0, 3, 1, 2)
        return torch.bmm(sym, m).view(b, c, h, w)


def gram(f: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    """Gram matrix F F^T of (B, C, H, W) features, returned in float32.

    bfloat16 features are multiplied in bfloat16 (the matmul accumulates in float32 inside; on a CPU
    with AVX512-BF16 this is a sixth of an iteration saved), anything else in float32.
    normalise=True divides by H*W (so Grams of different sizes compare); False is the seed's M^T M.
    """
    h, w = f.shape[-2:]
    g = _Gram.apply(f if f.dtype == torch.bfloat16 else f.float())
    return g / (h * w) if normalise else g


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).pow(2).mean()


def relative_sq_error(a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||a - t||^2 / ||t||^2: scale-free, so layers and images of any magnitude weigh alike.

    A target broadcast over a batch (one style Gram for B images) counts once per image: the mean of
    the B relative errors."""
    t = target.float()
    return (a.float() - t).pow(2).sum() / (t.pow(2).sum().clamp_min(1e-12) * (a.numel() // t.numel()))


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (1, 1, H, W) mask at (h, w): the mean over each cell when shrinking (a soft edge stays the share of
    the region in that cell, as a feature map's pooled pixel is), bilinear when growing."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    if size[0] <= mask.shape[-2] and size[1] <= mask.shape[-1]:
        return torch.nn.functional.adaptive_avg_pool2d(mask, size)
    return torch.nn.functional.interpolate(mask, size=size, mode="bilinear", align_corners=False).clamp(0, 1)


def total_variation(img: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Smoothness penalty on pixels: 'l1' is the seed's sum of absolute neighbour differences,
    'l2' the mean of squared ones (smooth, L-BFGS-friendly)."""
    dy = img[..., 1:, :] - img[..., :-1, :]
    dx = img[..., :, 1:] - img[..., :, :-1]
    if kind == "l1":
        return dy.abs().sum() + dx.abs().sum()
    if kind == "l2":
        return dy.pow(2).mean() + dx.pow(2).mean()
    raise ValueError(f"total variation kind must be 'l1' or 'l2', not {kind!r}")


class Term:
    """One named loss term. Subclasses set `layers` and implement `__call__`."""

    name: str = "term"
    layers: tuple[str, ...] = ()

    def __call__(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _reduce(values: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    total = sum(w * v for w, v in zip(weights, values))
    return total / sum(weights)


@dataclass
class ContentTerm(Term):
    """Distance of feature maps to the content image's, at `layers`."""

    targets: dict[str, torch.Tensor]
    form: str = "relative"  # "relative" (||F-Fc||^2/||Fc||^2) or "mse" (the seed's)
    name: str = "content"
    layer_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        self.layers = tuple(self.targets)

    def __call__(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        dist = relative_sq_error if self.form == "relative" else mse
        values = [dist(feats[k], t) for k, t in self.targets.items()]
        return _reduce(values, self.layer_weights or [1.0] * len(values))


def masked_gram(f: torch.Tensor, mask: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    """The Gram matrix of the region `mask` (1, 1, H, W in [0, 1], at f's size) of features f: each
    position's outer product weighted by the mask, on the scale of a whole map's (Gatys et al. 2017's
    spatial control, with soft masks as weights). A mask of ones is `gram`."""
    h, w = f.shape[-2:]
    area = mask.float().sum().clamp_min(1e-6)
    return gram(f * mask.sqrt().to(f.dtype), normalise) * (h * w / area)


@dataclass
class StyleTerm(Term):
    """Distance of Gram matrices to the style's (already blended over style images), at `layers`.

    `mask`: an optional (1, 1, H, W) region of the image; the Grams are then the region's (`masked_gram`),
    so the style acts there only."""

    targets: dict[str, torch.Tensor]  # layer -> target Gram
    form: str = "relative"  # "relative" with Grams / (h w), or "mse" with unnormalised Grams (seed)
    layer_weights: tuple[float, ...] | None = None
    name: str = "style"
    mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.layers = tuple(self.targets)

    def _gram(self, f: torch.Tensor) -> torch.Tensor:
        normalise = self.form == "relative"
        if self.mask is None:
            return gram(f, normalise)
        return masked_gram(f, resize_mask(self.mask, f.shape[-2:]), normalise)

    def __call__(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        dist = relative_sq_error if self.form == "relative" else mse
        values = [dist(self._gram(feats[k]), t) for k, t in self.targets.items()]
        return _reduce(values, self.layer_weights or [1.0] * len(values))


@dataclass
class RegionsTerm(Term):
    """Several styles, each in its own region (a `StyleTerm` with a mask), as one "style" term: the
    weighted mean of the regions' losses. Weights are the regions' areas (times any blend weight), so
    every painted pixel is pulled alike whatever the size of its region."""

    regions: list[tuple[StyleTerm, float]]
    name: str = "style"

    def __post_init__(self) -> None:
        self.layers = tuple(dict.fromkeys(layer for term, _ in self.regions for layer in term.layers))

    def __call__(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        return _reduce([term(feats, image) for term, _ in self.regions], [w for _, w in self.regions])


@dataclass
class TVTerm(Term):
    kind: str = "l2"
    name: str = "tv"
    layers: tuple[str, ...] = field(default=())

    def __call__(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        return total_variation(image, self.kind)


def style_targets(per_style: Sequence[Features], blend: Sequence[float], form: str) -> dict[str, torch.Tensor]:
    """Blend several style images (their features) into one Gram target per layer."""
    return blend_grams([{k: gram(f[k], normalise=form == "relative") for k in f} for f in per_style], blend)


def blend_grams(per_style: Sequence[Mapping[str, torch.Tensor]], blend: Sequence[float]) -> dict[str, torch.Tensor]:
    """Blend several style images' Gram matrices into one target per layer.

    sum_i w_i ||G - G_i||^2 differs from (sum w) ||G - mean_w G_i||^2 only by a constant, so a weighted
    mean of Grams gives the same optimum as summing one loss per style, at the cost of one.
    """
    if len(per_style) != len(blend):
        raise ValueError(f"{len(per_style)} style images but {len(blend)} blend weights")
    if any(w < 0 for w in blend) or sum(blend) <= 0:
        raise ValueError(f"style blend weights must be non-negative and not all zero, got {list(blend)}")
    total = float(sum(blend))
    return {layer: sum(w / total * g[layer] for w, g in zip(blend, per_style)) for layer in per_style[0]}


@dataclass
class TemporalTerm(Term):
    """Ruder et al. 2016's temporal loss: stay close to earlier stylised frames warped into this one, on
    the pixels the optical flow can be trusted for (mask 1; occlusions and motion boundaries 0).

    One target is the short-term loss; K stacked targets with their masks are the long-term loss (the
    video code makes the masks disjoint, so each pixel is held to one earlier frame).

    Normalised like their 1/D sum c (x - w)^2 (D = all pixel values, so each trusted pixel pulls the same
    whatever the mask's size), with differences measured in units of `scale` pixel levels so that a
    weight around 1 balances the default relative content and style terms.
    """

    target: torch.Tensor  # (K, 3, H, W) pixel space: warped earlier stylised frames
    mask: torch.Tensor  # (K, 1, H, W) in [0, 1]
    scale: float = 25.5
    name: str = "temporal"
    layers: tuple[str, ...] = field(default=())

    def __call__(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        diff = (image.float() - self.target.float()) / self.scale
        return (diff.pow(2) * self.mask).sum(0).mean()


@dataclass
class KeepTerm(TemporalTerm):
    """Stay close to the photo's own pixels where a keep mask is white (a face, say): the temporal loss's
    masked pull, with the photo as its target. Content features (relu4_2) tolerate the style's colours
    and texture: a content term 10 or 100 times stronger there barely held a face (README, "Regions")."""

    name: str = "keep"

"""Loss terms as small composable pieces.

A term knows which feature layers it reads and turns (features, image) into one scalar. The engine
sums `weight * term` over whatever terms it is given, so video can add a temporal term (and later
features other terms) without the engine knowing what they are.

Each of the engine's terms is a function (`finish`) of sums over the picture's positions (`sums`): Gram
matrices, squared differences, their counts. Sums over the parts of a picture add up to the whole
picture's, so a picture too large for one pass has exactly its whole value from tiles (tiles.py). The
histogram term is the exception: a rank is not a sum over parts, so it sees whole pictures only, and a print's
tiled refinement goes without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

Features = Mapping[str, torch.Tensor]
Sums = dict[tuple, "torch.Tensor | float"]  # (what, layer) -> a sum over positions, additive over parts
Box = tuple[int, int, int, int]  # top, left, bottom, right


@dataclass(frozen=True)
class Part:
    """One tile's own square of a larger picture: the positions a term sums over when handed that tile.

    The term gets the features of those positions only (already cropped) and the pixels of a window
    around them (`origin`: the window's top-left in the whole picture), and crops its own whole-picture
    targets and masks to match."""

    box: Box  # the square, in the whole picture's pixels
    origin: tuple[int, int]  # the window's top-left
    size: tuple[int, int]  # the whole picture's height and width
    strides: Mapping[str, int]  # pixels per feature position at each layer

    def cells(self, layer: str) -> tuple[slice, slice]:
        """The square's positions in `layer`'s whole-picture feature map."""
        step = self.strides[layer]
        top, left, bottom, right = self.box
        return slice(top // step, bottom // step), slice(left // step, right // step)

    def crop(self, whole: torch.Tensor, layer: str | None = None) -> torch.Tensor:
        """A whole-picture map (features at `layer`, or pixels) cut to the square."""
        if layer is not None:
            return whole[(..., *self.cells(layer))]
        top, left, bottom, right = self.box
        return whole[..., top:bottom, left:right]

    def own(self, window: torch.Tensor, below: int = 0, right: int = 0) -> torch.Tensor:
        """The square's pixels in `window`, with `below` rows and `right` columns more where the window has them."""
        top, left = self.box[0] - self.origin[0], self.box[1] - self.origin[1]
        return window[..., top:self.box[2] - self.origin[0] + below, left:self.box[3] - self.origin[1] + right]


def add_sums(total: Sums, more: Sums) -> Sums:
    """`total` plus `more`, key by key (`total` is updated)."""
    for key, value in more.items():
        total[key] = total[key] + value if key in total else value
    return total


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
    return TVTerm(kind=kind)({}, img)


class Term:
    """One named loss term. Subclasses set `layers` and implement `sums` and `finish` (a term that only
    ever sees whole pictures may implement `__call__` instead)."""

    name: str = "term"
    layers: tuple[str, ...] = ()

    def sums(self, feats: Features, image: torch.Tensor, part: Part | None = None) -> Sums:
        """The additive sums the value is made of, over the whole picture or over `part` of it."""
        raise NotImplementedError

    def finish(self, sums: Sums) -> torch.Tensor:
        """The value, from the whole picture's sums."""
        raise NotImplementedError

    def __call__(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        return self.finish(self.sums(feats, image))


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
        # ||Fc||^2 once, not every iteration: its squared copy is as large as the targets (relu4_2 at 4096 px:
        # 537 MB), and at a print's full size it came on top of the optimiser's buffers
        self.norms = {k: t.float().pow(2).sum() for k, t in self.targets.items()}

    def sums(self, feats: Features, image: torch.Tensor, part: Part | None = None) -> Sums:
        sums: Sums = {}
        for k, t in self.targets.items():
            f = feats[k]
            sums["sq", k] = (f.float() - (t if part is None else part.crop(t, k)).float()).pow(2).sum()
            sums["n", k] = f.numel()  # a batch against one target counts it once per image
        return sums

    def finish(self, sums: Sums) -> torch.Tensor:
        values = []
        for k, t in self.targets.items():
            if self.form == "relative":  # relative_sq_error
                values.append(sums["sq", k] / (self.norms[k].clamp_min(1e-12) * (sums["n", k] / t.numel())))
            else:  # mse
                values.append(sums["sq", k] / sums["n", k])
        return _reduce(values, self.layer_weights or [1.0] * len(values))


def region_gram_sum(f: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The sum over positions of f's outer products, each weighted by `mask` (1, 1, H, W in [0, 1], at f's size)."""
    return gram(f * mask.sqrt().to(f.dtype), normalise=False)


def masked_gram(f: torch.Tensor, mask: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    """The Gram matrix of the region `mask` (1, 1, H, W in [0, 1], at f's size) of features f: each
    position's outer product weighted by the mask, on the scale of a whole map's (Gatys et al. 2017's
    spatial control, with soft masks as weights). A mask of ones is `gram`."""
    h, w = f.shape[-2:]
    area = mask.float().sum().clamp_min(1e-6)
    return region_gram_sum(f, mask) / (area if normalise else area / (h * w))


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
    _masks: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.layers = tuple(self.targets)

    def mask_at(self, size: tuple[int, int]) -> torch.Tensor:
        """The mask at a whole feature map's size, resized once per size: a print's tiles all crop the same
        few maps, two passes an iteration, and pooling the full-size mask for each was most of the work."""
        if size not in self._masks:
            self._masks[size] = resize_mask(self.mask, size)
        return self._masks[size]

    def sums(self, feats: Features, image: torch.Tensor, part: Part | None = None) -> Sums:
        """Per layer: the Gram sum over positions (masked: each weighted by the mask, as `masked_gram`), the
        mask's area and the count of positions."""
        sums: Sums = {}
        for k in self.targets:
            f = feats[k]
            count = f.shape[-2] * f.shape[-1]
            if self.mask is None:
                sums["gram", k] = gram(f, normalise=False)
            else:
                whole = f.shape[-2:] if part is None else tuple(n // part.strides[k] for n in part.size)
                mask = self.mask_at(tuple(whole))
                mask = mask if part is None else part.crop(mask, k)
                sums["gram", k], sums["area", k] = region_gram_sum(f, mask), mask.float().sum()
            sums["n", k] = count
        return sums

    def finish(self, sums: Sums) -> torch.Tensor:
        dist = relative_sq_error if self.form == "relative" else mse
        values = []
        for k, t in self.targets.items():
            g, n = sums["gram", k], sums["n", k]
            if self.mask is not None:  # the region's Gram on the scale of a whole map's (masked_gram)
                g = g * (n / sums["area", k].clamp_min(1e-6))
            values.append(dist(g / n if self.form == "relative" else g, t))
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

    def sums(self, feats: Features, image: torch.Tensor, part: Part | None = None) -> Sums:
        return {(i, *key): v for i, (term, _) in enumerate(self.regions)
                for key, v in term.sums(feats, image, part).items()}

    def finish(self, sums: Sums) -> torch.Tensor:
        return _reduce([term.finish({key[1:]: v for key, v in sums.items() if key[0] == i})
                        for i, (term, _) in enumerate(self.regions)], [w for _, w in self.regions])


@dataclass
class TVTerm(Term):
    kind: str = "l2"
    name: str = "tv"
    layers: tuple[str, ...] = field(default=())

    def sums(self, feats: Features, image: torch.Tensor, part: Part | None = None) -> Sums:
        """Neighbour differences from each pixel to the next one down and right (a part owns those starting
        in its square), and their counts."""
        if self.kind not in ("l1", "l2"):
            raise ValueError(f"total variation kind must be 'l1' or 'l2', not {self.kind!r}")
        down = image if part is None else part.own(image, below=1)
        across = image if part is None else part.own(image, right=1)
        dy = down[..., 1:, :] - down[..., :-1, :]
        dx = across[..., :, 1:] - across[..., :, :-1]
        norm = torch.abs if self.kind == "l1" else torch.square
        return {("dy",): norm(dy).sum(), ("ny",): dy.numel(), ("dx",): norm(dx).sum(), ("nx",): dx.numel()}

    def finish(self, sums: Sums) -> torch.Tensor:
        if self.kind == "l1":  # total_variation: the seed's sums
            return sums["dy",] + sums["dx",]
        return sums["dy",] / sums["ny",] + sums["dx",] / sums["nx",]


QUANTILES = 1024  # points of each channel's quantile function kept for a histogram target
HISTOGRAM_BINS = 256  # bins an image's own values are ranked with (a sort cost 4x an iteration at 256 px)
HISTOGRAM_FINE = 16  # lookup points a bin: 0.04% (relative RMS) from interpolating in the bin, random 64x256x256 map
HISTOGRAM_STRIDE = 4  # every n-th position of a picture ranks its values (its range and histogram) ...
HISTOGRAM_SAMPLE = 1 << 14  # ... while that leaves at least this many
HISTOGRAM_CHUNK = 1 << 17  # positions matched at a time (a 4096 px picture's relu1_1 has 16.8M)
STATISTICS_MOST = 1 << 18  # positions of a painting read for its quantiles (every n-th)


def _resample(values: torch.Tensor, points: int) -> torch.Tensor:
    """(C, N) sorted values -> (C, points): the same quantile function at `points` evenly spaced ranks."""
    return torch.nn.functional.interpolate(values[None], size=points, mode="linear", align_corners=True)[0]


def quantile_table(features: torch.Tensor, points: int = QUANTILES) -> torch.Tensor:
    """(1, C, H, W) features -> (C, points): each channel's values at evenly spaced ranks, lowest to highest,
    read from at most STATISTICS_MOST positions, every n-th (a sort of all of a 1024 px painting's relu1_1
    took seconds; a thousand quantiles need no more)."""
    flat = features.detach().float().flatten(2)[0]
    return _resample(flat[:, ::-(-flat.shape[1] // STATISTICS_MOST)].sort(dim=1).values, points)


def blend_tables(tables: Sequence[torch.Tensor], blend: Sequence[float]) -> torch.Tensor:
    """The quantile table of a mixture: each painting's values in proportion to its blend weight, pooled."""
    total = float(sum(blend))
    points = tables[0].shape[1]
    parts = [_resample(t, max(1, round(points * w / total))) for t, w in zip(tables, blend) if w > 0]
    return _resample(torch.cat(parts, dim=1).sort(dim=1).values, points)


def _at_ranks(table: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """A (C, Q) quantile table read at `ranks` (B, M, C) in [0, 1], linearly between its points."""
    at = ranks * (table.shape[1] - 1)
    i = at.floor().clamp_(max=table.shape[1] - 2)
    t = table.t().to(ranks.device)[None].expand(ranks.shape[0], -1, -1)
    lo = t.gather(1, i.long())
    return lo + (t.gather(1, i.long() + 1) - lo) * (at - i)


def histogram_matched(f: torch.Tensor, table: torch.Tensor, bins: int = HISTOGRAM_BINS,
                      fine: int = HISTOGRAM_FINE, out: torch.Tensor | None = None) -> torch.Tensor:
    """Each value of `f` (B, C, H, W) replaced by the table's value at the same rank in its channel: the
    nearest values with the painting's distribution (Risser et al. 2017).

    Ranks come from a `bins`-bin histogram of each channel's sample, linear inside a bin; that map is read
    from a lookup table `fine` points a bin (nearest point), so matching a value is one gather from a small
    table: a handful of passes over the values where a sort cost four VGG iterations at relu1_1, 256 px, and
    two gathers with their interpolation about 2x this. Works in f's memory order (channels last or first,
    without a copy into the other) and HISTOGRAM_CHUNK positions at a time, so its temporaries stay small at
    print sizes; the result has f's shape and memory order, in float32, in `out` where that is an earlier
    result for a map of the same shape and order (a fresh one costs the system time of mapping its pages)."""
    b, c, h, w = f.shape
    channels_last = f.is_contiguous(memory_format=torch.channels_last) and not f.is_contiguous()

    def flat(t: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, HW, C) channels last, else (B, C, HW): a view where t has f's memory order."""
        return t.permute(0, 2, 3, 1).reshape(b, h * w, c) if channels_last else t.reshape(b, c, h * w)

    x = flat(f.detach())
    along = 1 if channels_last else 2  # the positions' dimension
    stride = max(1, min(HISTOGRAM_STRIDE, h * w // HISTOGRAM_SAMPLE))
    sample = x[:, ::stride].float() if channels_last else x[:, :, ::stride].float()  # ranks from a sample
    low = sample.amin(dim=along, keepdim=True)
    # a channel of one value (a flat picture) still needs a span: a hundredth of its level at least keeps
    # low * scale small enough (about 4e5) to cancel in float32, fused or not, so it reads its lowest point
    scale = bins / torch.maximum(sample.amax(dim=along, keepdim=True) - low, low.abs() * 1e-2).clamp_min(1e-12)
    index = (sample - low).mul_(scale).nan_to_num_().clamp_(0, bins - 1).long()  # each sampled value's bin
    counts = low.new_zeros(b, bins, c) if channels_last else low.new_zeros(b, c, bins)
    counts.scatter_add_(along, index, counts.new_ones(()).expand(index.shape))
    cdf = torch.cat([torch.zeros_like(low), counts.cumsum(along)], dim=along) / counts.sum(along, keepdim=True)
    # (B, bins + 1, C): the painting's value at each bin edge's rank
    edges = _at_ranks(table, cdf if channels_last else cdf.transpose(1, 2))
    points = bins * fine + 1
    lookup = torch.nn.functional.interpolate(edges.transpose(1, 2), size=points, mode="linear",
                                             align_corners=True).reshape(b, -1)  # (B, C x points)
    # each channel's part of its picture's table, added before the nearest point is taken: float32 keeps it
    # exact below 2^24 (64 channels: a point's last 1/64 may round, 0.5% of reads land one point off)
    if c * points >= 1 << 24:
        raise ValueError(f"{c} channels x {points} lookup points: too many for float32 indices; use fewer bins")
    first = torch.arange(c, device=f.device, dtype=torch.float32).view(low.shape[1:]) * points
    scale *= fine
    shift = first + 0.5 - low * scale  # x * scale + shift: x's nearest point in its channel's part (+ 0.5: nearest)
    last_point = first + (points - 1)
    reuse = out is not None and (channels_last or f.is_contiguous()) and out.dtype == torch.float32 and \
        out.device == f.device and out.shape == f.shape and out.stride() == f.stride()  # so flat(out) is a view
    out = flat(out) if reuse else torch.empty(x.shape, device=f.device)
    step = HISTOGRAM_CHUNK if channels_last else max(1, HISTOGRAM_CHUNK * c // (h * w))  # positions or channels a part
    for i in range(b):
        for j in range(0, x.shape[1], step):
            p = slice(None) if channels_last else slice(j, j + step)  # channels first: this part's own channels
            at = torch.addcmul(shift[i, p], x[i, j:j + step], scale[i, p]).nan_to_num_()  # NaN: the loss says so
            at.clamp_(first[p], last_point[p])
            torch.index_select(lookup[i], 0, at.int().view(-1), out=out[i, j:j + step].view(-1))
    return out.view(b, h, w, c).permute(0, 3, 1, 2) if channels_last else out.view(b, c, h, w)


class _Pull(torch.autograd.Function):
    """||f - m||^2 / ||m||^2 with m a fixed target, which it overwrites. The gradient is made in the forward pass,
    where f - m is at hand (in m's memory), and kept in f's dtype: a pass less than recomputing it in the backward,
    and neither m nor a float32 f - m is kept for it."""

    @staticmethod
    def forward(ctx, f: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(m).square().clamp_min(1e-12)
        d = m.sub_(f)  # m - f: the sign is the gradient's, flipped below
        value = torch.linalg.vector_norm(d).square() / norm
        ctx.save_for_backward(d.mul_(-2 / norm).to(f.dtype, copy=True))  # a copy: m's memory is used again
        return value

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        if torch.is_grad_enabled():  # create_graph: its gradient is a constant, a second derivative silently zero
            raise RuntimeError("the histogram term has no second derivative (create_graph=True)")
        return ctx.saved_tensors[0] * grad, None


@dataclass
class HistogramTerm(Term):
    """Risser et al. 2017's histogram loss: each channel's values at `layers` pulled to the painting's whole
    distribution, not only its Gram (second moments). At relu1_1 that is the painting's palette and strokes as
    distributions: a Gram is matched by an orange suit in a grey-and-teal painting, a histogram is not.

    Matched afresh at every evaluation: held fixed for 2 or 5 evaluations, the astronaut's content distance
    rose from 0.280 to 0.296 and 0.414 (painterly.md, section 9). A whole-picture term: regions, keep masks
    and a print's tiled refinement go without it."""

    tables: dict[str, torch.Tensor]  # layer -> (C, QUANTILES) the painting's quantile table
    name: str = "histogram"
    # layer -> the last matched map's memory, used again while the shape and memory order stay
    _memory: dict[str, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.layers = tuple(self.tables)

    def __call__(self, feats: Features, image: torch.Tensor) -> torch.Tensor:
        values = []
        for k, table in self.tables.items():
            f = feats[k]
            matched = self._memory[k] = histogram_matched(f, table, out=self._memory.get(k))
            values.append(_Pull.apply(f, matched))
        return _reduce(values, [1.0] * len(values))


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

    def sums(self, feats: Features, image: torch.Tensor, part: Part | None = None) -> Sums:
        own, target, mask = ((image, self.target, self.mask) if part is None
                             else (part.own(image), part.crop(self.target), part.crop(self.mask)))
        diff = (own.float() - target.float()) / self.scale
        return {("sq",): (diff.pow(2) * mask).sum(), ("n",): diff[0].numel()}

    def finish(self, sums: Sums) -> torch.Tensor:
        return sums["sq",] / sums["n",]


@dataclass
class KeepTerm(TemporalTerm):
    """Stay close to the photo's own pixels where a keep mask is white (a face, say): the temporal loss's
    masked pull, with the photo as its target. Content features (relu4_2) tolerate the style's colours
    and texture: a content term 10 or 100 times stronger there barely held a face (README, "Regions")."""

    name: str = "keep"

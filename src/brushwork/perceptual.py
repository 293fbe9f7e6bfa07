"""One perceptual criterion: the VGG loss network, its targets and the weighted loss terms.

The optimiser (`optimise.Stylizer`), network training (`train`) and the judge (`evaluate`) all measure
images through this one class, so there is one Gram, one target cache and one precision policy. Anything
that changes is the parameters being fitted: an image's pixels, or a network's weights.

Every call takes a batch (B, 3, H, W) in pixel space; targets are (1, ...) and broadcast over it.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from . import images, tiles
from .losses import (ContentTerm, HistogramTerm, KeepTerm, RegionsTerm, StyleTerm, Term, TVTerm, blend_grams,
                     blend_tables, gram, quantile_table, resize_mask)
from .models import VGGFeatures, deepest
from .presets import Config
from .tiles import Tiling
from .weights import LoadedWeights

KEEP_WEIGHT = 1.0  # weight of the pull to the photo's pixels inside a keep mask (losses.KeepTerm)
STYLE_CACHE_SIZE = 8  # sets of style targets kept: a few sizes (pyramid levels) of a few style mixes
WeightedTerms = list[tuple[Term, float]]
HistogramTables = dict[str, torch.Tensor]  # layer -> the painting's quantile table at that layer


def fingerprint(img: Image.Image) -> bytes:
    """Identity of an image's pixels, so equal style images share cached targets across calls."""
    return hashlib.blake2b(img.tobytes(), digest_size=16).digest() + repr(img.size).encode()


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cpu_has_bf16() -> bool:
    """True where the CPU runs bfloat16 matrix work natively (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def pick_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(f"precision must be auto, float32 or bfloat16, not {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if device.type == "cpu" and cpu_has_bf16() else torch.float32


class Perceptual:
    """The loss network set up once for a `Config`: features, cached targets, weighted terms.

    >>> p = Perceptual(config, load_weights("vgg16"))
    >>> terms = p.terms(content, [style_img], [1.0], content_img)
    >>> values = p.evaluate(x, terms)            # {"content": ..., "style": ..., "tv": ...}
    """

    def __init__(self, config: Config, weights: LoadedWeights, device: str | torch.device | None = None) -> None:
        self.config = config
        self.device = pick_device(device)
        self.dtype = pick_precision(config.precision, self.device)
        if weights.arch != config.arch:
            raise ValueError(f"the weights {weights.source} are {weights.arch} but the run asks for "
                             f"{config.arch}; pass matching --weights or --arch")
        self.prep = weights.preprocessing
        histogram = config.histogram_layers if config.histogram_weight else ()  # an unused name is not looked up
        layers = (*config.content_layers, *config.style_layers, *histogram)
        net = VGGFeatures(config.arch, config.pooling, last_layer=deepest(config.arch, layers))
        try:
            net.load_weights(weights.state_dict)
        except ValueError as exc:
            raise ValueError(f"{weights.source}: {exc}") from None
        exact = net.eval().requires_grad_(False).to(self.device, memory_format=torch.channels_last)
        # Channels-last suits oneDNN and cuDNN alike (float32 on this CPU: 378 against 433 ms per plain
        # VGG pass at 256 px); weights are stored in the compute precision so autocast never recasts them.
        # The first convolution stays float32: it reads the pixels unrounded and makes the pixel gradient,
        # whose step-to-step differences are L-BFGS's curvature; bfloat16 rounds both to 8 bits (rocket's
        # style 2.3% off float32 at 100 iterations without it); no measurable time.
        # Targets are computed once per size, so they come from a float32 copy: a bfloat16 target is a
        # bias that every iteration aims at (rocket's style drifted to 2.3% off float32 at 120 iterations).
        # With both: within 1.4% of float32 at 80/100/120 iterations (benchmarks/results/precision.md).
        self._exact = exact
        self.net = exact if self.dtype == torch.float32 else copy.deepcopy(exact).to(self.dtype)
        self.net.features[0].float()
        use_compile = config.compile if config.compile is not None else self.device.type == "cuda"
        # On CUDA "reduce-overhead" also captures CUDA graphs, removing per-layer launch costs.
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        self._forward = torch.compile(self.net, mode=mode) if use_compile else self.net
        self._style_cache: dict[tuple, tuple[dict[str, torch.Tensor], HistogramTables | None]] = {}
        # Set during a print-size run's full-size iterations: style images and photos larger than its tiles get
        # their targets tile by tile (the same targets, in bounded memory).
        self.tiling: Tiling | None = None

    @property
    def min_side(self) -> int:
        """The smallest image side the deepest layer still sees as at least one pixel."""
        return 2 ** sum(name.startswith("pool") for name in self.net.names)

    def features(self, pixels: torch.Tensor, layers: Sequence[str], *, exact: bool = False
                 ) -> dict[str, torch.Tensor]:
        # Pixels enter in float32 (the first convolution's precision); the network hands on in the compute
        # precision, as autocast would without its per-pass weight casts; the loss terms work in float32.
        # `exact`: all in float32, for targets.
        x = self.prep(pixels).contiguous(memory_format=torch.channels_last)
        return (self._exact if exact else self._forward)(x, tuple(layers))

    def _style_targets(self, styles: Sequence[Image.Image], blend: Sequence[float], longest: int,
                       content: Image.Image | None = None, *, tables: bool = False
                       ) -> tuple[dict[str, torch.Tensor], HistogramTables | None]:
        """Gram targets and, asked for `tables`, histogram tables, cached: a video's frames, a pyramid rerun or a
        training run pay for them once. The tables are None where not computed: not asked for (regions), without
        a histogram weight, or during a print's tiled level (which goes without the term); a later whole-picture
        call at the same size fills them in.

        `content` is only read for histogram matching (the style recoloured to that photo)."""
        c = self.config
        size = c.style_size or max(2, round(longest * c.style_scale))
        matched = c.preserve_colors == "histogram" and content is not None
        key = (tuple(fingerprint(s) for s in styles), tuple(blend), size, fingerprint(content) if matched else None)
        grams, found = self._style_cache.get(key, (None, None))
        want_tables = tables and bool(c.histogram_weight) and self.tiling is None and found is None
        if grams is None or want_tables:
            per_style_grams, per_style_tables = [], []
            content_t = images.to_tensor(content, self.device) if matched else None
            for style in styles:
                t = images.to_tensor(images.fit(style, self._style_side(style, size)), self.device)
                if content_t is not None:
                    t = images.match_histogram(t, content_t)
                if grams is None:
                    per_style_grams.append(self._grams(t))
                if want_tables:  # each painting's tables at once: its relu1_1 maps are not kept
                    with torch.no_grad():
                        feats = self._exact_features(t, c.histogram_layers)
                    per_style_tables.append({k: quantile_table(f) for k, f in feats.items()})
            if grams is None:
                grams = blend_grams(per_style_grams, blend)
            if want_tables:
                found = {k: blend_tables([t[k] for t in per_style_tables], blend) for k in c.histogram_layers}
            if key not in self._style_cache and len(self._style_cache) >= STYLE_CACHE_SIZE:  # --preserve-colors
                self._style_cache.pop(next(iter(self._style_cache)))  # histogram keys on each photo: drop the oldest
            self._style_cache[key] = (grams, found)
        return grams, found

    def _style_side(self, style: Image.Image, size: int) -> int:
        """`size`, raised so the painting's shorter side still reaches `min_side`: a target may be larger than
        a small pyramid level, but the network cannot measure a painting thinner than its deepest pooling."""
        return max(size, math.ceil(self.min_side * max(style.size) / min(style.size)))

    def _grams(self, style: torch.Tensor) -> dict[str, torch.Tensor]:
        """A style image's Gram targets at every style layer (tile by tile when larger than a print run's tiles)."""
        c = self.config
        normalise = c.loss_form == "relative"
        if self._tiled(style):
            return tiles.grams(self._exact_features, style, self.tiling, self.net.names, c.style_layers, normalise)
        with torch.no_grad():
            feats = self._exact_features(style, c.style_layers)
        return {k: gram(f, normalise) for k, f in feats.items()}

    def _exact_features(self, pixels: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.features(pixels, layers, exact=True)

    def _tiled(self, pixels: torch.Tensor) -> bool:
        """Whether targets of `pixels` are computed tile by tile (a print-size run, an image larger than its windows)."""
        return self.tiling is not None and max(pixels.shape[-2:]) > self.tiling.core + 2 * self.tiling.margin

    def check_size(self, pixels: torch.Tensor) -> None:
        need = self.min_side
        if min(pixels.shape[-2:]) < need:
            raise ValueError(f"the image is {pixels.shape[-1]}x{pixels.shape[-2]} pixels but layer "
                             f"{self.net.names[-1]} needs at least {need} on each side; use a larger "
                             f"--size or shallower layers")

    def content_term(self, content: torch.Tensor) -> ContentTerm:
        """Stay near `content`'s features (a batch: each output near its own photo)."""
        self.check_size(content)
        layers = self.config.content_layers
        if self._tiled(content):
            targets = tiles.assemble(self._exact_features, content, self.tiling, self.net.names, layers)
        else:
            with torch.no_grad():
                targets = self._exact_features(content, layers)
        return ContentTerm(targets, form=self.config.loss_form)

    def style_term(self, styles: Sequence[Image.Image], blend: Sequence[float], longest: int,
                   content: Image.Image | None = None, mask: torch.Tensor | None = None) -> StyleTerm:
        c = self.config
        grams, _ = self._style_targets(styles, blend, longest, content)
        weights = c.layer_weights  # given in the config's layer order; the targets come in the network's
        by_layer = None if weights is None else dict(zip(c.style_layers, weights))
        return StyleTerm(grams, form=c.loss_form, mask=mask,
                         layer_weights=None if by_layer is None else tuple(by_layer[k] for k in grams))

    def regions_term(self, styles: Sequence[Image.Image], blend: Sequence[float], longest: int,
                     masks: Sequence[torch.Tensor] | None, keep: torch.Tensor | None,
                     content: Image.Image | None = None) -> RegionsTerm:
        """Each style in its own region (`masks`, one per style; None: all styles blended over the whole
        image), none where `keep` holds the photo. Masks are (1, 1, H, W) at the output's size."""
        if masks is None:
            regions = [(list(styles), list(blend), torch.ones_like(keep), 1.0)]
        else:
            regions = [([style], [1.0], mask, share) for style, mask, share in zip(styles, masks, blend)]
        terms = []
        for group, weights, mask, share in regions:
            if keep is not None:
                mask = mask * (1 - keep)
            terms.append((self.style_term(group, weights, longest, content, mask),
                          share * float(mask.mean().clamp_min(1e-6))))
        return RegionsTerm(terms)

    def terms(self, content: torch.Tensor, styles: Sequence[Image.Image], blend: Sequence[float],
              content_image: Image.Image | None = None, *, masks: Sequence[torch.Tensor] | None = None,
              keep: torch.Tensor | None = None, longest: int | None = None,
              weights: tuple[float, float] | None = None, histogram: bool = True) -> WeightedTerms:
        """The weighted loss terms for one output size (content already at that size).

        `masks` (one per style) paint each style in its own region; `keep` holds its region to the photo's
        pixels (losses.KeepTerm) and leaves the style out of it. Both are (1, 1, H, W)
        in [0, 1] at any size: they are resized to the content's. `longest`: the whole picture's longest
        side, which sets the style's scale, when `content` is a tile of it. `weights`: (content, style) weights
        instead of the config's (a strength's, which the run steers as it goes). `histogram`: False leaves the
        histogram term out (a picture that fits in memory only without its maps)."""
        c = self.config
        content_weight, style_weight = weights or (c.content_weight, c.style_weight)
        size = tuple(content.shape[-2:])
        longest = longest or max(size)
        masks = None if masks is None else [resize_mask(m, size) for m in masks]
        keep = None if keep is None else resize_mask(keep, size)
        if masks is None and keep is None:
            style: Term = self.style_term(styles, blend, longest, content_image)
        else:
            style = self.regions_term(styles, blend, longest, masks, keep, content_image)
        terms: WeightedTerms = [(self.content_term(content), content_weight), (style, style_weight)]
        if histogram and c.histogram_weight and c.histogram_layers and masks is None and keep is None and \
                self.tiling is None:
            # whole pictures only: regions, keep masks and a print's tiled level go without it
            terms.append((HistogramTerm(self._style_targets(styles, blend, longest, content_image, tables=True)[1]),
                          c.histogram_weight))
        if keep is not None:
            terms.append((KeepTerm(content, keep), KEEP_WEIGHT))
        if c.tv_weight:
            terms.append((TVTerm(kind=c.tv_kind), c.tv_weight))
        return terms

    def evaluate(self, x: torch.Tensor, terms: Sequence[tuple[Term, float]]) -> dict[str, torch.Tensor]:
        """Each term's raw value on `x`, from one pass of the network through every layer they read."""
        layers = sorted({layer for term, _ in terms for layer in term.layers})
        feats = self.features(x, layers)
        return {term.name: term(feats, x) for term, _ in terms}

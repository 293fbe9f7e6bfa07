"""Print sizes: solve the whole picture at a size that fits in memory, then refine it at full size with the
whole picture's own objective, evaluated tile by tile so memory stays bounded.

Known flaws of tiled style transfer (Neural-Tile, py-style-transfer) are seams, colour drift and a mosaic
look, because each tile is fitted on its own to the painting's statistics. Here no tile is fitted alone:
every loss term is a function of sums over the picture's positions (losses.Term.sums: Gram matrices,
squared differences), and the whole picture's sums are the sums of its tiles' own squares, each passed
with a margin of context wider than the network's receptive field so its features are exactly the
whole picture's there. One iteration (`Tiled`) makes two passes over the tiles: the first, without
gradients, adds up the sums and so gives the whole picture's loss and its derivative with respect to
each sum; the second backpropagates those derivatives through each tile and adds the tiles' pixel
gradients into one gradient of the whole picture, for the optimiser's usual step. The result is the
untiled objective's gradient (tests/test_tiles.py), with no per-tile statistics and nothing to blend.

The plan (`plan`) follows from the memory model (memory.estimate): the largest square tile whose window
fits beside the full-size buffers (the picture, its gradient, the optimiser's state, the content targets).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from . import images, memory
from .errors import BrushworkError
from .losses import Box, Part, Sums, Term, add_sums, gram
from .models import deepest, layer_names
from .presets import Config

FULL_PER_PIXEL = 96  # bytes per output pixel beside the tiles, the optimiser and the content targets: the
# picture, its gradient, the step's and the best copies, the photo (float32, 3 channels: 12 each), copies to save


@dataclass(frozen=True)
class Partial:
    """A print-size run stopped during its full-size iterations (Ctrl-C): its plan and how many of those
    iterations are done, so `Stylizer.run(..., init=the saved picture, resume=partial)` does the rest (the
    whole picture is the checkpoint; L-BFGS starts its curvature memory afresh)."""

    tiling: "Tiling"
    done: int
    weights: tuple[float, float] | None = None  # (content, style) as a --strength or style goal had steered them


def receptive_field(names: Sequence[str]) -> tuple[int, int]:
    """(receptive field in pixels, total stride) of the last of `names` in a VGG (3x3 convs, 2x2 pools)."""
    field, stride = 1, 1
    for name in names:
        if name.startswith("conv"):
            field += 2 * stride
        elif name.startswith("pool"):
            field += stride
            stride *= 2
    return field, stride


def boxes(height: int, width: int, core: int) -> list[Box]:
    """Squares of side `core` (the last row and column smaller) covering height x width, row by row."""
    return [(top, left, min(top + core, height), min(left + core, width))
            for top in range(0, height, core) for left in range(0, width, core)]


def grow(box: Box, margin: int, height: int, width: int) -> Box:
    """`box` with `margin` pixels of context on each side, inside the picture."""
    top, left, bottom, right = box
    return max(0, top - margin), max(0, left - margin), min(height, bottom + margin), min(width, right + margin)


@dataclass(frozen=True)
class Tiling:
    """How a print-size run is split: the tiles' own squares and the context around each."""

    height: int
    width: int
    core: int  # side of a tile's own square, a multiple of the network's stride
    margin: int  # context on each side, more than the receptive field, a multiple of the stride
    history: int = 0  # L-BFGS pairs kept at full size, as many of the config's as fit (0: the config's)

    @property
    def boxes(self) -> list[Box]:
        return boxes(self.height, self.width, self.core)

    def window(self, box: Box) -> Box:
        return grow(box, self.margin, self.height, self.width)

    def parts(self, names: Sequence[str]) -> list[tuple[Part, tuple]]:
        """Each tile's own square as a losses.Part, with the index of its window in a (..., H, W) picture.
        `names`: the network's layers in order (for each layer's stride)."""
        strides = {name: receptive_field(names[:i + 1])[1] for i, name in enumerate(names)}
        found = []
        for box in self.boxes:
            top, left, bottom, right = self.window(box)
            found.append((Part(box, (top, left), (self.height, self.width), strides),
                          (Ellipsis, slice(top, bottom), slice(left, right))))
        return found


def network_layers(config: Config) -> list[str]:
    """The network's layers in order, up to the deepest the config reads (its receptive field)."""
    names = layer_names(config.arch)
    return names[:names.index(deepest(config.arch, (*config.content_layers, *config.style_layers))) + 1]


def choose(width: int, height: int, config: Config, dtype: torch.dtype, limit: memory.Budget | None,
           regions: int = 0) -> Tiling | None:
    """None when the whole picture fits in `limit` (None: memory is not checked, see memory.budget), also where
    it fits only without the histogram term (`bare`), else the tiling with the largest tiles that fit;
    MemoryLimitError, naming a size that fits, when none does. `regions`: masked style regions (memory.estimate)."""
    if limit is None or memory.estimate(width, height, config, dtype, regions) <= limit.bytes or \
            bare(width, height, config, dtype, limit, regions):
        return None
    return plan(width, height, config, dtype, limit, regions)


def bare(width: int, height: int, config: Config, dtype: torch.dtype, limit: memory.Budget | None,
         regions: int = 0) -> bool:
    """Whether only the histogram term's maps tip the whole picture over `limit`: its full size is then solved
    whole without the term, which a tiled level would go without too, rather than in tiles (slower, not exact)."""
    if limit is None or not config.histogram_weight:
        return False
    lean = config.with_(histogram_weight=0.0)
    return memory.estimate(width, height, lean, dtype, regions) <= limit.bytes < \
        memory.estimate(width, height, config, dtype, regions)


def full_per_pixel(config: Config, history: int) -> int:
    """Bytes per output pixel of the full-size buffers: FULL_PER_PIXEL, the content targets at the config's
    layers and the optimiser's state (L-BFGS: `history` pairs and the last picture and gradient)."""
    fixed = FULL_PER_PIXEL + math.ceil(memory.maps_per_pixel(config.arch, config.content_layers))
    if config.optimizer == "lbfgs":
        return fixed + memory.PAIR_PER_PIXEL * (history + 1)
    return fixed + (memory.ADAM_PER_PIXEL if config.optimizer == "adam" else 0)


def need(width: int, height: int, config: Config, dtype: torch.dtype, window: int, history: int,
         regions: int = 0) -> int:
    """Peak bytes of a print at width x height with `history` L-BFGS pairs, in tiles whose windows are `window`
    px square (clipped to the picture): the full-size buffers and one window's network passes (its optimiser
    state is the picture's, counted in the first)."""
    per_tile = config.with_(optimizer="gd", histogram_weight=0.0,  # the tiles go without the histogram term
                            **({"style_scale": 1.0} if config.style_size is None else {}))
    return full_per_pixel(config, history) * width * height + memory.estimate(
        min(width, window), min(height, window), per_tile, dtype, regions)


def plan(width: int, height: int, config: Config, dtype: torch.dtype, limit: memory.Budget,
         regions: int = 0) -> Tiling:
    """The largest tiles whose windows fit in `limit` beside the full-size buffers, with as many of the
    config's L-BFGS pairs as fit beside tiles of twice the smallest side (at least one pair); raises
    MemoryLimitError naming the largest print size that fits when even the smallest tile does not.

    A tile's own square is at least twice its margin (`smallest`): below that a window is mostly context,
    passed again by each neighbour, and a print would take hundreds of thousands of tiles."""
    field, stride = receptive_field(network_layers(config))
    margin = math.ceil(field / stride) * stride
    smallest = 2 * margin
    history = config.history

    def needs(core: int, w: int = width, h: int = height) -> int:
        return need(w, h, config, dtype, core + 2 * margin, history, regions)

    while history > 1 and needs(2 * smallest) > limit.bytes:  # L-BFGS pairs give way to tiles of 4 margins:
        history -= 1  # smaller ones pass each pixel (1 + 2 margin / side)^2 times, over 2.25

    if needs(smallest) > limit.bytes:
        lo, hi = 0, max(width, height)  # the longest print side whose smallest tile fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            w, h = (max(1, round(width * mid / max(width, height))), max(1, round(height * mid / max(width, height))))
            lo, hi = (mid, hi) if needs(smallest, w, h) <= limit.bytes else (lo, mid - 1)
        raise memory.refuse(f"a {width}x{height} picture, even in tiles of {smallest} px,", needs(smallest), limit, lo)
    lo, hi = smallest // stride, max(smallest // stride, math.ceil(max(width, height) / stride))  # in strides
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if needs(mid * stride) <= limit.bytes else (lo, mid - 1)
    across = math.ceil(max(width, height) / (lo * stride))  # as few tiles as that allows, of even sizes
    return Tiling(height, width, max(smallest, math.ceil(max(width, height) / across / stride) * stride), margin,
                  history if config.optimizer == "lbfgs" else 0)


Features = Callable[[torch.Tensor, Sequence[str]], dict[str, torch.Tensor]]


def own_features(features: Features, window: torch.Tensor, part: Part,
                 layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """The features at `layers` of a tile's window, cut to the tile's own square (channels-last, as the
    network hands them on and the Gram reads them)."""
    feats = features(window, layers) if layers else {}
    top, left = part.origin
    shifted = Part(tuple(v - o for v, o in zip(part.box, (top, left, top, left))), (0, 0), part.size, part.strides)
    return {k: shifted.crop(f, k).contiguous(memory_format=torch.channels_last) for k, f in feats.items()}


def grams(features: Features, image: torch.Tensor, tiling: Tiling, names: Sequence[str], layers: Sequence[str],
          normalise: bool = True) -> dict[str, torch.Tensor]:
    """The Gram matrices of a whole picture too large for one pass, summed over the tiles' own squares
    (losses.Term.sums), so they equal the whole picture's. `names`: the network's layers in order."""
    total: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    for part, window in Tiling(*image.shape[-2:], tiling.core, tiling.margin).parts(names):
        with torch.no_grad():
            for k, f in own_features(features, image[window], part, layers).items():
                total[k] = total.get(k, 0) + gram(f, normalise=False)
                counts[k] = counts.get(k, 0) + f.shape[-2] * f.shape[-1]
    return {k: g / counts[k] if normalise else g for k, g in total.items()}


def assemble(features: Features, image: torch.Tensor, tiling: Tiling, names: Sequence[str],
             layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """The whole picture's feature maps at `layers` (content targets of a print), put together from its tiles'
    own squares without ever passing the whole picture."""
    whole: dict[str, torch.Tensor] = {}
    for part, window in Tiling(*image.shape[-2:], tiling.core, tiling.margin).parts(names):
        with torch.no_grad():
            for k, f in own_features(features, image[window], part, layers).items():
                if k not in whole:
                    step = part.strides[k]
                    whole[k] = f.new_empty((*f.shape[:2], part.size[0] // step, part.size[1] // step))
                whole[k][(..., *part.cells(k))] = f
    return whole


class Tiled:
    """The whole picture's objective, evaluated tile by tile: a criterion for optimise.descend (its
    `evaluate`), whose values and gradient are the untiled ones (see the module's docstring)."""

    def __init__(self, features: Features, tiling: Tiling, names: Sequence[str]) -> None:
        self.features, self.tiling, self.parts = features, tiling, tiling.parts(names)

    def evaluate(self, x: torch.Tensor, terms: Sequence[tuple[Term, float]]) -> dict[str, torch.Tensor]:
        own = tuple(term for term, _ in terms)
        return dict(zip((term.name for term in own), _Values.apply(x, self, own).unbind()))

    def sums(self, x: torch.Tensor, terms: Sequence[Term]) -> Sums:
        """Pass 1: every term's sums over the whole picture, tile by tile, without gradients."""
        total: Sums = {}
        with torch.no_grad():
            for part, window in self.parts:
                add_sums(total, self._part_sums(x[window], part, terms))
                # the window's activations, else kept by the C allocator: windows of several shapes piled up to
                # 450 MB more than one window's at 1024 px
                memory.release()
        return total

    def gradient(self, x: torch.Tensor, terms: Sequence[Term], slopes: Sums) -> torch.Tensor:
        """Pass 2: the gradient of sum(slope * sum) over the whole picture (`slopes`: the loss's derivatives
        with respect to the sums), tile by tile; each tile's window takes the gradient of its own square's
        sums, margins included, and the windows' gradients add up."""
        grad = torch.zeros_like(x)
        for part, window in self.parts:
            pixels = x[window].detach().requires_grad_(True)
            with torch.enable_grad():
                sums = self._part_sums(pixels, part, terms)
                linear = [(slopes[k] * v).sum() for k, v in sums.items()
                          if slopes.get(k) is not None and isinstance(v, torch.Tensor) and v.requires_grad]
                if linear:
                    sum(linear).backward()
                    grad[window] += pixels.grad
            memory.release()
        return grad

    def _part_sums(self, window: torch.Tensor, part: Part, terms: Sequence[Term]) -> Sums:
        feats = own_features(self.features, window, part, sorted({k for term in terms for k in term.layers}))
        return {(i, *key): v for i, term in enumerate(terms) for key, v in term.sums(feats, window, part).items()}


class _Values(torch.autograd.Function):
    """The terms' values from pass 1; their backward is pass 2, given how much each value weighs in the
    loss the optimiser differentiates (any weighting, balanced runs' included)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, tiled: Tiled, terms: tuple[Term, ...]) -> torch.Tensor:
        leaves = {k: v.detach().requires_grad_(v.is_floating_point()) if isinstance(v, torch.Tensor) else v
                  for k, v in tiled.sums(x, terms).items()}
        with torch.enable_grad():
            values = [term.finish({key[1:]: v for key, v in leaves.items() if key[0] == i})
                      for i, term in enumerate(terms)]
        ctx.state = tiled, terms, leaves, values
        ctx.save_for_backward(x)
        return torch.stack([v.detach().float() for v in values])

    @staticmethod
    def backward(ctx, weights: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        tiled, terms, leaves, values = ctx.state
        keys = [k for k, v in leaves.items() if isinstance(v, torch.Tensor) and v.requires_grad]
        with torch.enable_grad():
            total = sum(w * v for w, v in zip(weights, values) if v.requires_grad)
            slopes = dict(zip(keys, torch.autograd.grad(total, [leaves[k] for k in keys], allow_unused=True)))
        return tiled.gradient(x, terms, slopes), None, None


def partial_path(output: Path) -> Path:
    """Where a stopped print-size run records its plan, beside the picture: `out.png.tiles.json`."""
    return output.with_name(output.name + ".tiles.json")


def write_partial(output: Path, partial: Partial, key: str) -> Path:
    """Record `partial` beside `output` (which holds the picture so far); `key` names the run's inputs."""
    t = partial.tiling
    record = {"key": key, "done": partial.done, "width": t.width, "height": t.height, "core": t.core,
              "margin": t.margin, "history": t.history, "weights": partial.weights}
    return images.write_atomic(partial_path(output), lambda f: f.write(json.dumps(record).encode()))


def read_partial(output: Path, key: str) -> Partial:
    """The partial run recorded beside `output` for the same inputs (`key`); a one-line error otherwise."""
    path = partial_path(output)
    try:
        record = json.loads(path.read_text())
        tiling = Tiling(record["height"], record["width"], record["core"], record["margin"], record["history"])
        weights = record.get("weights")
        partial = Partial(tiling, record["done"], None if weights is None else (float(weights[0]), float(weights[1])))
    except FileNotFoundError:
        raise ResumeError(f"{path}: not found, so there is no stopped print-size run to resume for "
                          f"{output.name}; run without --resume") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResumeError(f"{path}: unreadable ({exc}); delete it and run without --resume") from None
    if record["key"] != key:
        raise ResumeError(f"{path}: records a run with other inputs or settings; repeat the command that was "
                          f"stopped, or delete it and run without --resume")
    if not output.is_file():
        raise ResumeError(f"{output}: the picture so far is missing; run without --resume")
    return partial


class ResumeError(BrushworkError):
    """A stopped print-size run cannot be resumed (no record, another run's, or no picture)."""

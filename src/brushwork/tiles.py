"""Print sizes: solve the whole picture at a size that fits in memory, then refine it at full size tile by
tile, each tile against style targets computed once for the whole picture.

Known flaws of tiled style transfer (Neural-Tile, py-style-transfer) are seams, colour drift and a mosaic
look when each tile gets its own statistics. Here every tile starts from the whole-picture solve
(upsampled, so colours and large-scale layout are shared), is measured against the same Gram targets (the
painting's, computed exactly over the whole print size in strips: `grams`), and sees a margin of context
wider than the network's receptive field on every side; a tile's result is blended in with weights
that rise from 0 at its window's edge to 1 at its own square, so the next tile, which starts from it,
overlaps it smoothly.

The plan (`plan`) follows from the memory model (memory.estimate): the largest square tile whose window
fits beside the full-size buffers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from . import images, memory
from .errors import BrushworkError
from .losses import gram
from .models import deepest, layer_names
from .presets import Config

FULL_PER_PIXEL = 80  # bytes per output pixel beside the tiles: picture, photo, painting (float32), copies to save
Box = tuple[int, int, int, int]  # top, left, bottom, right


@dataclass(frozen=True)
class Partial:
    """A print-size run stopped between tiles (Ctrl-C): its plan and how many tiles are finished, so
    `Stylizer.run(..., init=the saved picture, resume=partial)` does the rest."""

    tiling: "Tiling"
    done: int


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

    @property
    def boxes(self) -> list[Box]:
        return boxes(self.height, self.width, self.core)

    def window(self, box: Box) -> Box:
        return grow(box, self.margin, self.height, self.width)

    def blend_weights(self, box: Box, device: torch.device) -> torch.Tensor:
        """(1, 1, h, w) weights over the window of `box`: 1 on the box, falling linearly to 0 at the window's
        edges towards other tiles (not at the picture's own edges)."""
        top, left, bottom, right = self.window(box)

        def ramp(start: int, end: int, inner_start: int, inner_end: int) -> torch.Tensor:
            pos = torch.arange(start, end, device=device, dtype=torch.float32) + 0.5
            rise = ((pos - start) / max(1, inner_start - start)).clamp(max=1) if inner_start > start else 1
            fall = ((end - pos) / max(1, end - inner_end)).clamp(max=1) if end > inner_end else 1
            return torch.ones(end - start, device=device) * rise * fall

        ys, xs = ramp(top, bottom, box[0], box[2]), ramp(left, right, box[1], box[3])
        return (ys[:, None] * xs[None, :])[None, None]


def network_layers(config: Config) -> list[str]:
    """The network's layers in order, up to the deepest the config reads (its receptive field)."""
    names = layer_names(config.arch)
    return names[:names.index(deepest(config.arch, (*config.content_layers, *config.style_layers))) + 1]


def choose(width: int, height: int, config: Config, dtype: torch.dtype, limit: memory.Budget | None,
           regions: int = 0) -> Tiling | None:
    """None when the whole picture fits in `limit` (None: memory is not checked, see memory.budget), else
    the tiling with the largest tiles that fit; MemoryLimitError, naming a size that fits, when none does.
    `regions`: masked style regions (memory.estimate)."""
    if limit is None or memory.estimate(width, height, config, dtype, regions) <= limit.bytes:
        return None
    return plan(width, height, config, dtype, limit, regions)


def plan(width: int, height: int, config: Config, dtype: torch.dtype, limit: memory.Budget,
         regions: int = 0) -> Tiling:
    """The largest tiles whose windows fit in `limit` beside the full-size buffers; raises
    MemoryLimitError naming the largest print size that fits when even the smallest tile does not.

    A tile's own square is at least twice its margin (`smallest`): below that a window is mostly context,
    solved again by each neighbour, and a print would take hundreds of thousands of tiles."""
    field, stride = receptive_field(network_layers(config))
    margin = math.ceil(field / stride) * stride
    smallest = 2 * margin
    per_tile = config.with_(style_scale=1.0) if config.style_size is None else config  # styles are tiled too

    def need(core: int, w: int = width, h: int = height) -> int:
        return FULL_PER_PIXEL * w * h + memory.estimate(min(w, core + 2 * margin), min(h, core + 2 * margin),
                                                        per_tile, dtype, regions)

    if need(smallest) > limit.bytes:
        lo, hi = 0, max(width, height)  # the longest print side whose smallest tile fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            w, h = (max(1, round(width * mid / max(width, height))), max(1, round(height * mid / max(width, height))))
            lo, hi = (mid, hi) if need(smallest, w, h) <= limit.bytes else (lo, mid - 1)
        raise memory.refuse(f"a {width}x{height} picture, even in tiles of {smallest} px,", need(smallest), limit, lo)
    lo, hi = smallest // stride, max(smallest // stride, math.ceil(max(width, height) / stride))  # in strides
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if need(mid * stride) <= limit.bytes else (lo, mid - 1)
    across = math.ceil(max(width, height) / (lo * stride))  # as few tiles as that allows, of even sizes
    return Tiling(height, width, max(smallest, math.ceil(max(width, height) / across / stride) * stride), margin)


def grams(features: Callable[[torch.Tensor], dict[str, torch.Tensor]], image: torch.Tensor, tiling: Tiling,
          names: Sequence[str], normalise: bool = True) -> dict[str, torch.Tensor]:
    """The Gram matrices of a whole picture too large for one pass, computed over the tiles of `tiling`.

    Each tile is passed with its margin of context (more than the receptive field), and only the features
    of its own square are summed, so the result equals the whole picture's Grams: tile edges fall on the
    network's pooling grid (multiples of its stride), and no feature is counted twice. `names`: the
    network's layers in order (for each layer's stride)."""
    total: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    height, width = image.shape[-2:]
    for box in boxes(height, width, tiling.core):
        top, left, bottom, right = grow(box, tiling.margin, height, width)
        with torch.no_grad():
            feats = features(image[..., top:bottom, left:right])
        for layer, f in feats.items():
            step = receptive_field(names[:list(names).index(layer) + 1])[1]  # this layer's stride
            own = f[..., (box[0] - top) // step:(box[2] - top) // step, (box[1] - left) // step:(box[3] - left) // step]
            g = gram(own.contiguous(memory_format=torch.channels_last), normalise=False)
            total[layer] = total.get(layer, 0) + g
            counts[layer] = counts.get(layer, 0) + own.shape[-2] * own.shape[-1]
    return {k: g / counts[k] if normalise else g for k, g in total.items()}


Solve = Callable[[int, Box, torch.Tensor], tuple[torch.Tensor | None, bool]]


def refine(x: torch.Tensor, tiling: Tiling, solve: Solve, start: int = 0) -> Iterator[int]:
    """Refine the full-size picture `x` in place, tile after tile from index `start`. `solve(index, window,
    pixels)` optimises one window's pixels: (the best, whether Ctrl-C stopped it). Yields each finished
    tile's index; a tile stopped part-way is not blended in, so `x` only ever holds whole tiles, and stops there."""
    for index, box in enumerate(tiling.boxes):
        if index < start:
            continue
        top, left, bottom, right = tiling.window(box)
        best, interrupted = solve(index, (top, left, bottom, right), x[..., top:bottom, left:right])
        if interrupted or best is None:
            return
        weight = tiling.blend_weights(box, x.device)
        region = x[..., top:bottom, left:right]
        region.copy_(region * (1 - weight) + best * weight)  # one write: Ctrl-C cannot leave it half-blended
        yield index


def partial_path(output: Path) -> Path:
    """Where a stopped print-size run records its plan, beside the picture: `out.png.tiles.json`."""
    return output.with_name(output.name + ".tiles.json")


def write_partial(output: Path, partial: Partial, key: str) -> Path:
    """Record `partial` beside `output` (which holds the picture so far); `key` names the run's inputs."""
    t = partial.tiling
    record = {"key": key, "done": partial.done, "width": t.width, "height": t.height, "core": t.core,
              "margin": t.margin}
    return images.write_atomic(partial_path(output), lambda f: f.write(json.dumps(record).encode()))


def read_partial(output: Path, key: str) -> Partial:
    """The partial run recorded beside `output` for the same inputs (`key`); a one-line error otherwise."""
    path = partial_path(output)
    try:
        record = json.loads(path.read_text())
        partial = Partial(Tiling(record["height"], record["width"], record["core"], record["margin"]), record["done"])
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

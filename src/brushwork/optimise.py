"""The optimiser: gradient steps on the pixels of the mixed image against the perceptual criterion.

Everything image-specific (content, styles, init, extra loss terms) is an input, so the pyramid, video
frames and future features reuse the same loop. Network, targets, precision and device are the
criterion's (perceptual.py), shared with network training and the judge.

The loop itself (`descend`: L-BFGS, Adam or GD steps, each projected onto a range; `keep_best`: the best
variable so far, kept through Ctrl-C) takes any criterion, so sound (audio.py) is fitted by the same code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image

from . import images, memory, strength, tiles
from .errors import OptionError
from .losses import Term, resize_mask
from .perceptual import Perceptual
from .presets import DEFAULT, Config, check_range
from .weights import LoadedWeights, load_weights


@dataclass
class Step:
    """What a callback sees after each iteration."""

    iteration: int  # iterations done so far, over all pyramid levels
    total: int  # iterations planned in all
    loss: float  # combined loss; balanced runs weigh it with the previous step's adjustment values
    losses: dict[str, float]  # each term's raw value
    adjustments: dict[str, float] | None  # the seed's 1/(loss + 1e-10), when balancing
    level: int  # pyramid level (0 = coarsest); single-scale runs only have level 0
    image: torch.Tensor  # the variable: the mixed image in pixels (sound: log spectrogram); do not modify


@dataclass
class Result:
    image: Image.Image
    tensor: torch.Tensor
    iterations: int
    interrupted: bool
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    partial: tiles.Partial | None = None  # a print-size run stopped during its full-size iterations: what is left
    weights: tuple[float, float] | None = None  # (content, style) weights at the end (a strength steers them)


Callback = Callable[[Step], None]
ImageInput = "str | Path | Image.Image"
Bounds = tuple[float | None, float | None]
PIXELS: Bounds = (0, 255)


class Criterion(Protocol):
    """What the loop fits a variable to: each weighted term's raw value at `x` (perceptual.Perceptual for
    images, audio.SoundCriterion for spectrograms)."""

    def evaluate(self, x: torch.Tensor, terms: Sequence[tuple[Term, float]]) -> dict[str, torch.Tensor]: ...


class LoopSettings(Protocol):
    """The loop's own settings (a `Config` has them)."""

    optimizer: str  # lbfgs, adam or gd
    lr: float  # Adam's learning rate, GD's step
    history: int  # L-BFGS memory
    balance: bool  # the seed's adjustment values


def keep_best(steps: Iterable[Step], balance: bool = False,
              on_step: Callable[[Step], None] | None = None) -> tuple[torch.Tensor | None, bool, int]:
    """Run `steps` to the end or to Ctrl-C; returns the best variable seen (None if no step finished),
    whether Ctrl-C stopped it, and how many updates that variable holds (a step reports the variable it
    was evaluated at, before its own update). Balanced losses are rescaled every step, so they do not
    rank: the last wins."""
    best: tuple[float, torch.Tensor, int] | None = None
    seen = 0
    try:
        for step in steps:
            if best is None or balance or step.loss <= best[0]:
                best = (step.loss, step.image, seen)  # already a copy
            seen += 1
            if on_step is not None:
                on_step(step)
    except KeyboardInterrupt:
        return (best[1] if best else None), True, (best[2] if best else 0)
    return (best[1] if best else None), False, (best[2] if best else 0)


class LBFGS:
    """Limited-memory BFGS without line search, one gradient evaluation per iteration.

    The inverse-Hessian product uses the compact form of Byrd, Nocedal and Schnabel (1994): the pairs
    live as rows of one (2m, n) matrix, so a step is four matrix-vector products and some m x m algebra,
    a fixed few dozen kernels and no host-device sync, where the textbook two-loop recursion launches ~6m
    small ones in sequence and syncs to test each pair. Same directions (tests/test_lbfgs.py). The price
    is on a CPU: 7 against 4 ms a step at 256 px with 20 pairs, about 1.5% of an iteration.

    torch.optim.LBFGS drops curvature pairs below an absolute threshold (y.s > 1e-10), which silently
    freezes it when a scale-free loss has tiny pixel gradients; here the test is relative to |y|^2 (a
    rejected pair stays in its slot, masked out), and the first step moves the largest pixel by
    `first_step` (pixel units) whatever the loss's scale.
    """

    def __init__(self, history: int = 20, first_step: float = 1.0) -> None:
        if history < 1:
            raise ValueError(f"L-BFGS history must be at least 1, not {history}")
        self.m, self.first_step = history, first_step
        self.steps = 0  # pairs written so far (slot of pair k: k % m)
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None

    def _allocate(self, n: int, like: torch.Tensor) -> None:
        m, small = self.m, dict(dtype=torch.float64, device=like.device)
        self.w = torch.zeros(2 * m, n, dtype=torch.float32, device=like.device)  # rows: s_0..s_m-1, y_0..y_m-1
        self.sy = torch.zeros(m, m, **small)  # sy[i, j] = s_i . y_j
        self.yy = torch.zeros(m, m, **small)  # yy[i, j] = y_i . y_j
        self.valid = torch.zeros(m, **small)  # 1 where a slot holds an accepted pair
        self.gamma = torch.ones((), **small)  # inverse-Hessian scale: s.y / y.y of the newest pair

    def _remember(self, s: torch.Tensor, y: torch.Tensor) -> None:
        m, j = self.m, self.steps % self.m
        self.w[j], self.w[m + j] = s, y
        wy = (self.w @ y).double()  # s_i . y and y_i . y for every slot, the new one included
        ys = self.w[m:] @ s  # y_i . s
        self.sy[:, j], self.sy[j, :] = wy[:m], ys.double()
        self.yy[:, j] = self.yy[j, :] = wy[m:]
        sy, yy = wy[j], wy[m + j]
        accept = sy > 1e-10 * yy
        self.valid[j] = accept.double()
        self.gamma = torch.where(accept, sy / yy.clamp_min(1e-300), self.gamma)
        self.steps += 1

    def direction(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """The step to add to `x`, given the gradient `g` at `x` (both flat)."""
        g = g.float()
        if self.last is None:
            self._allocate(g.numel(), g)
        else:
            self._remember(x - self.last[0], g - self.last[1])
        self.last = (x.clone(), g.clone())
        if self.steps == 0:  # also the scale used for as long as every pair is rejected
            self.gamma = (self.first_step / g.abs().max().clamp_min(1e-30)).double()
            return -self.gamma.float() * g
        m, k = self.m, min(self.steps, self.m)
        idx = (torch.arange(k, device=g.device) + self.steps - k) % m  # slots, oldest pair first
        v = self.valid[idx]
        both = v[:, None] * v[None, :]
        sy, yy = self.sy[idx][:, idx] * both, self.yy[idx][:, idx] * both
        # rejected pairs: zero rows and columns, and 1 on R's diagonal, so they drop out of the algebra
        r = torch.triu(sy) + torch.diag(1 - v)
        d = torch.diag(torch.diagonal(sy))
        wg = (self.w @ g).double()
        a, b = wg[:m][idx] * v, wg[m:][idx] * v
        gamma = self.gamma
        u = torch.linalg.solve_triangular(r, a[:, None], upper=True)
        p = torch.linalg.solve_triangular(r.T, (d + gamma * yy) @ u - gamma * b[:, None], upper=False)
        coef = torch.zeros(2 * m, dtype=torch.float64, device=g.device)
        coef[idx], coef[m + idx] = p[:, 0], -gamma * u[:, 0]
        return -(gamma.float() * g + coef.float() @ self.w)


class Stylizer(Perceptual):
    """A configured style-transfer engine; reuse one across images or video frames.

    It is the perceptual criterion (network, targets, terms) plus a loop that fits an image's pixels to it.

    >>> s = Stylizer(presets.get("default").with_(size=256))
    >>> result = s.run("photo.jpg", ["starry.jpg"], callback=print)
    """

    def __init__(self, config: Config = DEFAULT, *, weights: str | Path | LoadedWeights | None = None,
                 device: str | torch.device | None = None, max_memory: int | None = None) -> None:
        """`max_memory`: bytes a run may use in all (default: what the machine has free when it starts)."""
        check_range("max_memory", max_memory)
        self.max_memory = max_memory
        if weights is None and config.arch != "vgg16":
            weights = config.arch  # the registry's copy: downloaded once, then cached
        super().__init__(config, weights if isinstance(weights, LoadedWeights) else load_weights(weights), device)

    # --- the run ----------------------------------------------------------------------------------

    def initial(self, init: str | Path | Image.Image | torch.Tensor, content: torch.Tensor,
                styles: Sequence[Image.Image], generator: torch.Generator, blend: Sequence[float] | None = None,
                masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        h, w = content.shape[-2:]
        if init == "fast":  # a warm start: the arbitrary-style network's picture (feedforward/wct.py)
            from .feedforward.wct import WCTStylizer

            # at full strength, as measured (benchmarks/results/warm-start.md): the most style to start from
            paint = WCTStylizer(styles, blend=blend, strength=1.0, style_scale=self.config.style_scale,
                                device=self.device, precision=self.config.precision)
            return paint.tensor(content)
        if isinstance(init, torch.Tensor):
            return images.resize_tensor(init.to(self.device, torch.float32), (h, w)).clone()
        if isinstance(init, Image.Image):
            return images.to_tensor(init.resize((w, h), Image.LANCZOS), self.device)
        if init == "content":
            return content.clone()
        if init == "palette":
            # the photo with each painting's colour mean and covariance (the palette neural-style reaches by
            # dissolving the photo, at no cost to its shapes), mixed by the blend weights or, with masks,
            # region by region; where no mask reaches, the photo's own colours
            weights = [float(b) for b in (blend or [1.0] * len(styles))]
            shares = ([torch.full((1, 1, h, w), b, device=self.device) for b in weights] if masks is None
                      else [resize_mask(m, (h, w)) * b for m, b in zip(masks, weights)])
            total = sum(shares)
            mixed = sum(share * images.match_histogram(content, images.to_tensor(images.fit(style, max(h, w)),
                                                                                 self.device))
                        for share, style in zip(shares, styles))
            return torch.where(total > 0, mixed / total.clamp_min(1e-8), content)
        if init == "noise":
            lo, hi = self.config.noise
            noise = torch.rand((1, 3, h, w), generator=generator) * (hi - lo) + lo
            return noise.to(self.device)
        if init == "style":
            return images.to_tensor(styles[0].resize((w, h), Image.LANCZOS), self.device)
        return images.to_tensor(images.load(init).resize((w, h), Image.LANCZOS), self.device)

    def levels(self, content: Image.Image) -> list[tuple[int, int]]:
        """(longest side, iterations) for each pyramid level, finest last.

        Levels too small for the network's deepest layer are skipped, so a small --size still works.
        Without pyramid_iterations each level gets half the full size's iterations. With pyramid_px, halves
        of the coarsest level (at its iteration count) go first until one is at most that many pixels:
        the painting's large structures are laid down at the same size in pixels whatever the output's.
        """
        c = self.config
        longest = c.size or max(content.size)
        counts = c.pyramid_iterations or (c.iterations // 2,) * len(c.pyramid)
        if len(c.pyramid) != len(counts):
            raise ValueError(f"--pyramid has {len(c.pyramid)} level(s) but --pyramid-iterations "
                             f"{len(counts)}; give one count per level, or none")
        fractions, counts = list(c.pyramid), list(counts)
        if fractions and c.pyramid_px:
            fraction, count = min(zip(fractions, counts))
            while longest * fraction > c.pyramid_px:
                fraction /= 2
                fractions.insert(0, fraction)
                counts.insert(0, count)
        need = self.min_side
        plan = []
        for fraction, iterations in zip(fractions, counts):
            side = round(longest * fraction)
            if side < longest and min(images.fit_size(content.size, side)) >= need and iterations > 0:
                plan.append((side, iterations))
        return plan + [(longest, c.iterations)]

    def run(self, content: ImageInput, styles: ImageInput | Sequence[ImageInput], *,
            style_blend: Sequence[float] | None = None,
            init: str | Path | Image.Image | torch.Tensor | None = None,
            extra_terms: Sequence[tuple[Term, float]] = (), callback: Callback | None = None,
            seed: int | None = None, masks: Sequence[ImageInput] | None = None,
            keep_mask: ImageInput | None = None, resume: tiles.Partial | None = None, whole: bool = False) -> Result:
        """Stylise `content` with `styles`; returns the best image found (also when interrupted).

        `init` overrides the config's; `extra_terms` are added to the loss at the finest level (video's
        temporal term is one). `masks` (images, one per style: white where that style paints, grey for soft
        edges and blends) paint each style in its own region, weighted by `style_blend`; `keep_mask` holds
        its region close to the photo. Ctrl-C stops early and still returns the best image so far.

        A picture too large for memory is solved whole at a size that fits, then refined at full size with the
        whole picture's objective evaluated tile by tile (tiles.py); one that fits only without the histogram
        term is refined whole without it (as tiles would be). Ctrl-C in tiles returns the picture so far and
        `Result.partial`, and a call with the same inputs, `init=` that picture and `resume=` that partial does
        the remaining full-size iterations. `whole` (implied by
        `extra_terms`, which see whole pictures only): refuse such a picture at once (MemoryLimitError) instead;
        a video's frames must all be solved the same way.
        """
        c = self.config
        check_range("seed", seed)
        check_range("style_blend", style_blend)
        content_img = images.load(content)
        style_list = [styles] if isinstance(styles, (str, Path, Image.Image)) else list(styles)
        if not style_list:
            raise ValueError("give at least one style image")
        style_imgs = [images.load(s) for s in style_list]
        blend = list(style_blend) if style_blend is not None else [1.0] * len(style_imgs)
        if masks is not None and len(masks) != len(style_imgs):
            raise OptionError(f"{len(masks)} mask(s) for {len(style_imgs)} style image(s); give one --mask "
                              f"per --style, in the same order")
        if masks is not None and len(blend) != len(style_imgs):
            raise OptionError(f"{len(blend)} blend weight(s) for {len(style_imgs)} masked style image(s); "
                              f"give one per style")
        mask_ts = None if masks is None else [images.load_mask(m, content_img.size, self.device) for m in masks]
        keep = None if keep_mask is None else images.load_mask(keep_mask, content_img.size, self.device)
        generator = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**63)
        plan = self.levels(content_img)
        width, height = images.fit_size(content_img.size, plan[-1][0])
        limit = memory.budget(self.device, self.max_memory)
        regions = len(mask_ts) if mask_ts is not None else int(keep is not None)  # masked style terms
        if (extra_terms or whole) and limit is not None:  # refused before any tiling is planned
            lean = c.with_(histogram_weight=0.0)  # the least a whole picture needs
            need = memory.estimate(width, height, lean, self.dtype, regions)
            if need > limit.bytes:
                raise memory.refuse(f"a {width}x{height} picture, whole (video frames are not tiled),", need, limit,
                                    memory.largest_side(width, height, lean, self.dtype, limit.bytes, regions))
        bare = resume is None and tiles.bare(width, height, c, self.dtype, limit, regions)  # full size: no histogram
        tiling = tiles.choose(width, height, c, self.dtype, limit, regions) if resume is None else resume.tiling
        if tiling is not None:
            if extra_terms or whole:
                raise OptionError("a stopped print-size run is finished in tiles: it takes no extra terms and is "
                                  "never whole")
            if (tiling.width, tiling.height) != (width, height) or (resume is not None and init is None):
                raise OptionError(f"the run to resume was {tiling.width}x{tiling.height} and needs its picture "
                                  f"as init; this one is {width}x{height}: use the same --size")
            whole_levels = [] if resume is not None else self._whole_levels(content_img, plan, limit.bytes, regions)
            plan = [*whole_levels, (plan[-1][0], c.iterations - (resume.done if resume is not None else 0))]
        # a strength: weights that start from its uncalibrated balance and are steered to its content distance;
        # a style goal: the style weight raised while the style distance is above it
        steer = (c.strength is not None and strength.steered(c.strength)) or bool(c.style_goal)
        weighting = strength.start(c.strength) if c.strength is not None else (c.content_weight, c.style_weight)
        if resume is not None and resume.weights is not None:  # where the stopped run had steered them
            weighting = resume.weights
        total = sum(n for _, n in plan)
        start, done, history = time.perf_counter(), 0, []
        x: torch.Tensor | None = None
        interrupted, partial = False, None

        def record_at(level: int, then: Callable[[Step], None] | None = None) -> Callable[[Step], None]:
            def record(step: Step) -> None:
                nonlocal done
                done += 1
                history.append({"loss": step.loss, **step.losses})
                if callback is not None:
                    step.iteration, step.total, step.level = done, total, level
                    callback(step)
                if then is not None:
                    then(step)
            return record

        def steering(terms: list[tuple[Term, float]]) -> Callable[[Step], None]:
            """Every strength.EVERY iterations, move the style term's weight towards the strength's content
            distance or the style goal; the loop reads `terms` afresh each iteration, and the next level starts
            where this ends."""
            count, at = 0, next(i for i, (term, _) in enumerate(terms) if term.name == "style")

            def adjust(step: Step) -> None:
                nonlocal count, weighting
                count += 1
                if count % strength.EVERY == 0:
                    term, weight = terms[at]
                    terms[at] = term, (
                        strength.adjust(weight, step.losses["content"], strength.target(c.strength))
                        if c.strength is not None else
                        strength.push(weight, step.losses["style"], c.style_goal, c.style_weight))
                    weighting = weighting[0], terms[at][1]
            return adjust

        try:
            for level, (longest, iterations) in enumerate(plan):
                # a print's full size: targets and the objective tile by tile (tiles.py)
                self.tiling = tiling if level == len(plan) - 1 else None
                target = images.to_tensor(images.fit(content_img, longest), self.device)
                terms = None  # the last level's (a histogram term keeps a map) go before this level's targets are made
                terms = self.terms(target, style_imgs, blend, content_img, masks=mask_ts, keep=keep, weights=weighting,
                                   histogram=not (bare and level == len(plan) - 1))
                if self.tiling is not None:  # what the whole-picture solve and the targets' tiles freed, before
                    memory.release()  # the full-size optimiser's buffers
                if level == len(plan) - 1 and tiling is None:
                    terms += list(extra_terms)
                if x is None:
                    x = self.initial(init if init is not None else c.init, target, style_imgs, generator, blend, mask_ts)
                else:
                    x = images.enlarge(x, target, c.pyramid_detail)
                # a coarser level's image is not a candidate at this size: each level keeps its own best (steered
                # runs change their loss as they go, so, as with balancing, the last is the best)
                best, interrupted, updates = keep_best(self._optimise(x, terms, iterations), c.balance or steer,
                                                       record_at(level, then=steering(terms) if steer else None))
                x = best if best is not None else x
                if interrupted:
                    if self.tiling is not None:  # the whole picture at full size is the checkpoint, even unchanged
                        partial = tiles.Partial(tiling, c.iterations - iterations + updates,
                                                weighting if c.strength is not None or steer else None)
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            self.tiling = None
        if x is None:
            raise KeyboardInterrupt
        out = x.detach().clamp(0, 255)
        if tuple(out.shape[-2:]) != (height, width):  # stopped at a coarse level: to full size with the detail
            out = images.enlarge(out, images.to_tensor(images.fit(content_img, plan[-1][0]), self.device),
                                 c.pyramid_detail)
        if c.preserve_colors == "luminance":
            out = images.luminance_transfer(out, images.to_tensor(content_img, self.device))
        return Result(images.to_image(out), out, done, interrupted, time.perf_counter() - start, history, partial,
                      weighting)

    def _whole_levels(self, content: Image.Image, plan: list[tuple[int, int]], budget: int,
                      regions: int) -> list[tuple[int, int]]:
        """The levels of a print-size run solved on the whole picture before its tiles: the pyramid's that
        fit in `budget` bytes, or, without any, the whole picture once at the largest size that fits (at
        most half the print's side), with the full size's iterations."""
        fits = [(side, n) for side, n in plan[:-1]
                if memory.estimate(*images.fit_size(content.size, side), self.config, self.dtype, regions) <= budget]
        if fits:
            return fits
        side = min(plan[-1][0] // 2, memory.largest_side(*images.fit_size(content.size, plan[-1][0]), self.config,
                                                          self.dtype, budget, regions))
        return [(side, self.config.iterations)] if min(images.fit_size(content.size, side)) >= self.min_side else []

    def _optimise(self, x: torch.Tensor, terms: Sequence[tuple[Term, float]], iterations: int) -> Iterator[Step]:
        """The loop on the whole picture, at a print's full size tile by tile (`self.tiling`), with the L-BFGS
        pairs that fit there."""
        if self.tiling is None:
            return descend(self, x, terms, iterations, self.config)
        settings = self.config.with_(history=self.tiling.history) if self.tiling.history else self.config
        return descend(tiles.Tiled(self.features, self.tiling, self.net.names), x, terms, iterations, settings)


# A step whose loss is more than this many times the previous step's is undone (`descend`). A steered style weight
# changes the loss by at most strength.MOST (4x) at once, so only a step gone astray crosses it.
BLOW_UP = 10.0


def descend(criterion: Criterion, x: torch.Tensor, terms: Sequence[tuple[Term, float]], iterations: int,
            c: LoopSettings, bounds: Bounds = PIXELS) -> Iterator[Step]:
    """Fit `x` to the criterion's weighted terms; yield a `Step` after each iteration (x and losses as of
    the start of that step). Each step is projected onto `bounds` (pixels: 0-255)."""
    x = x.detach().clone().requires_grad_(True)
    previous: dict[str, float] = {}

    def objective() -> tuple[torch.Tensor, dict[str, float], dict[str, float] | None, float]:
        values = criterion.evaluate(x, terms)
        # one device-to-host copy per iteration for all the numbers the loop reports
        raw = dict(zip(values, torch.stack([v.detach().float() for v in values.values()]).tolist()))
        if any(not math.isfinite(v) for v in raw.values()):
            raise FloatingPointError(
                f"the loss became NaN or infinite ({raw}); lower --lr or the loss weights")
        adjust = None
        factor = dict.fromkeys(values, 1.0)
        if c.balance:
            # The seed's "adjustment values" 1/(loss + 1e-10). As in the notebook's TensorFlow graph,
            # the combined loss reads the values assigned on the previous step (1e-10 before the
            # first assignment) while this step's new values are computed and reported.
            adjust = {k: 1.0 / (v + 1e-10) for k, v in raw.items()}
            factor = dict(previous) or dict.fromkeys(values, 1e-10)
            previous.update(adjust)
        total = sum(w * factor[t.name] * values[t.name] for t, w in terms)
        return total, raw, adjust, sum(w * factor[t.name] * raw[t.name] for t, w in terms)

    update = _updater(x, c, bounds)
    last: tuple[float, torch.Tensor] | None = None  # the previous step's loss and image
    for _ in range(iterations):
        x.grad = None
        total, raw, adjust, shown = objective()
        if c.optimizer == "lbfgs" and not c.balance and last is not None and shown > BLOW_UP * max(last[0], 0.0):
            # L-BFGS has no line search: after the loss changes under it (a steered style weight), curvature
            # pairs from the old loss can send one step far off (brick + Turner from a fast picture: 4.7 ->
            # 7805 in one step, and never back). Undo that step and start the memory afresh. (Balanced losses
            # are left alone: their scale is reset every step by design.)
            del total  # its graph, before a second one is built
            with torch.no_grad():
                x.copy_(last[1])
            update = _updater(x, c, bounds)
            total, raw, adjust, shown = objective()
        image = x.detach().clone()
        total.backward()
        with torch.no_grad():
            update()
        last = (shown, image)
        yield Step(0, 0, shown, raw, adjust, 0, image)


def _updater(x: torch.Tensor, c: LoopSettings, bounds: Bounds) -> Callable[[], None]:
    """The optimiser's step on `x` (its gradient already computed), as one call."""
    if c.optimizer == "lbfgs":
        lbfgs = LBFGS(history=c.history)
        # Projected onto the valid range (pixels: 0-255) after every step, like Adam and GD below. Unbounded,
        # 2-3% of the pixels drift far outside 0-255 (-121..306 on chelsea + Scream at 256 px) and
        # the clamp at saving undoes what the loss paid for: rocket + Kandinsky scored 0.363 / 0.148
        # saved against 0.295 / 0.121 unclamped, and projected 0.302 / 0.120. The pairs that L-BFGS
        # keeps are the steps actually taken, so its curvature stays consistent.
        return lambda: x.add_(lbfgs.direction(x.detach().flatten(), x.grad.flatten()).view_as(x)
                              ).clamp_(*bounds)
    if c.optimizer == "adam":
        adam = torch.optim.Adam([x], lr=c.lr)
        return lambda: (adam.step(), x.clamp_(*bounds))
    if c.optimizer == "gd":
        def seed_step() -> None:  # the seed: a step of `lr` pixels per unit of gradient spread, then clip
            x.sub_(x.grad * (c.lr / (x.grad.float().std(unbiased=False) + 1e-8))).clamp_(*bounds)
        return seed_step
    raise ValueError(f"optimizer must be lbfgs, adam or gd, not {c.optimizer!r}")

"""The loss network's convolutions on weights packed once (models.frozen_conv) against PyTorch's plain ones,
which re-pack the weights at every call, interleaved in one process so load hits both alike.

    OMP_NUM_THREADS=2 python benchmarks/packed_conv.py --repeats 3 > benchmarks/results/packed-conv.md

Three workloads, each timed with the packed convolutions and with the plain ones (A B A B ...):
- the optimiser's default preset, a whole run at `--size` on each pair, with both pictures' content and style
  distances (`brushwork evaluate`) and their largest pixel difference (0: the same picture);
- a training step's loss network: forward and backward of the criterion on 4 crops of 128 px (what
  `brushwork train` and `train-decoders` pay besides their own network);
- `--fast` (WCT, forward only) at 512 px.
Prints a markdown table of medians, then one of single convolutions (forward and input gradient, bfloat16)
at the shapes VGG16's blocks have at the pyramid's 32 px level and at 256 px.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from brushwork import Stylizer, distances, images, models, presets
from brushwork.feedforward.wct import WCTStylizer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"
PAIRS = ("astronaut.png+vangogh_starry_night.jpg,chelsea.png+munch_the_scream.jpg,"
         "rocket.jpg+kandinsky_composition_vii.jpg")


@contextlib.contextmanager
def plain_convolutions() -> Iterator[None]:
    """PyTorch's own convolution for the loss network, as before packing."""
    packed = models.frozen_conv
    models.frozen_conv = lambda conv, x: conv(x)
    try:
        yield
    finally:
        models.frozen_conv = packed


def convolutions_of(plain: bool) -> contextlib.AbstractContextManager:
    """PyTorch's own convolutions (`plain`) or the packed ones."""
    return plain_convolutions() if plain else contextlib.nullcontext()


def timed(work: Callable[[bool], object], plain: bool) -> tuple[float, object]:
    with convolutions_of(plain):
        t0 = time.perf_counter()
        out = work(plain)
        return time.perf_counter() - t0, out


def convolutions(repeats: int = 50) -> None:
    """Forward and input-gradient milliseconds of one bfloat16 convolution, plain and packed."""
    print("\n| convolution (bfloat16) | input | plain: forward + input gradient, ms | packed |")
    print("|---|---|---:|---:|")
    for cin, cout, side in [(64, 64, 32), (256, 256, 8), (512, 512, 4), (64, 64, 256), (256, 256, 64), (512, 512, 32)]:
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(cin, cout, 3, padding=1).requires_grad_(False).to(torch.bfloat16)
        x = torch.randn(1, cin, side, side).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        x.requires_grad_(True)
        grad = torch.randn(1, cout, side, side).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        cells = []
        for plain in (True, False):
            def step() -> None:
                models.frozen_conv(conv, x).backward(grad)
            with convolutions_of(plain):
                for _ in range(5):
                    step()
                t0 = time.perf_counter()
                for _ in range(repeats):
                    step()
            cells.append(f"{(time.perf_counter() - t0) / repeats * 1e3:.2f}")
        print(f"| {cin} -> {cout} channels | {side}x{side} | {cells[0]} | {cells[1]} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", default=PAIRS, help="photo+painting,... from ../shared/images")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    pairs = [pair.split("+") for pair in args.pairs.split(",")]
    work: dict[str, Callable[[bool], object]] = {}  # each is called with `plain`
    for photo, painting in pairs:
        # an engine for each way, so neither reuses style targets the other computed
        engines = {plain: Stylizer(presets.DEFAULT.with_(size=args.size)) for plain in (False, True)}
        work[f"default, {photo} + {painting}, {args.size} px"] = (
            lambda plain, e=engines, c=SHARED / "content" / photo, s=SHARED / "style" / painting:
            (e[plain].run(c, s, seed=0), c, s))
    criterion = Stylizer(presets.DEFAULT.with_(size=128))
    style = images.load(SHARED / "style" / "vangogh_starry_night.jpg")
    crops = torch.rand(4, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 255
    terms = criterion.terms(crops, [style], [1.0], longest=256)

    def loss_network(plain: bool) -> None:
        x = crops.clone().requires_grad_(True)
        for _ in range(5):
            values = criterion.evaluate(x, terms)
            sum(w * values[t.name] for t, w in terms).backward()
    work["training step's loss network, 4 x 128 px (5 steps)"] = loss_network
    fast = WCTStylizer([style])
    work["--fast (WCT), astronaut, 512 px"] = lambda plain: fast.tensor(
        images.to_tensor(images.fit(images.load(SHARED / "content" / "astronaut.png"), 512)))
    for w in work.values():  # the first calls pay for packing, oneDNN's kernels and targets: not timed
        for plain in (False, True):
            timed(w, plain)
    seconds: dict[tuple[str, bool], list[float]] = {(k, plain): [] for k in work for plain in (False, True)}
    judged: dict[str, str] = {}
    for _ in range(args.repeats):
        for label, w in work.items():
            outs = {}
            for plain in (False, True):
                took, outs[plain] = timed(w, plain)
                seconds[label, plain].append(took)
                print(f"{label}, {'plain' if plain else 'packed'}: {took:.2f} s", file=sys.stderr, flush=True)
            if isinstance(outs[False], tuple):  # an optimiser's run: judge both pictures
                (packed, photo, painting), (plain, _, _) = outs[False], outs[True]
                scores = [distances(r.image, photo, painting) for r in (plain, packed)]
                judged[label] = (" | ".join(f"{d.content:.3f} / {d.style:.3f}" for d in scores)
                                 + f" | {(packed.tensor - plain.tensor).abs().max().item():.0f}")
    print(f"{torch.get_num_threads()} threads, median of {args.repeats} interleaved repeats (wall seconds); "
          f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| workload | plain convolutions | packed | packed / plain | content / style, plain | packed | "
          "largest pixel difference (0-255) |")
    print("|---|---:|---:|---:|---|---|---:|")
    for label in work:
        plain, packed = (statistics.median(seconds[label, b]) for b in (True, False))
        print(f"| {label} | {plain:.2f} | {packed:.2f} | {packed / plain:.2f} | {judged.get(label, ' |  | ')} |")
    convolutions()


if __name__ == "__main__":
    main()

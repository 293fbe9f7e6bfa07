"""Wall and CPU time of whole runs of several presets, interleaved in one process so load hits them alike.

    python benchmarks/preset_time.py --presets subtle,default --size 256 --repeats 3 --threads 2
    python benchmarks/preset_time.py --presets default,default+histogram_weight=0 --size 512 --repeats 2

Each repeat runs every preset once, in turn (A B A B ...), on the same photo and painting, from a
Stylizer made beforehand (as `brushwork demo` pays for it once too). Prints a markdown table of the
median per preset; CPU seconds (user + system of this process) are less sensitive than wall time to
other work on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from brushwork import Stylizer, images, presets
from quality import parse_set

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"


def recipe(spec: str) -> presets.Config:
    """A preset's name, or one with Config fields changed as quality.py's --set takes them: NAME+FIELD=VALUE+..."""
    name, *changes = spec.split("+")
    return presets.get(name).with_(**parse_set(changes))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="subtle,default", help="comma-separated: NAME or NAME+FIELD=VALUE+...")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--content", type=Path, default=SHARED / "content/astronaut.png")
    p.add_argument("--style", type=Path, default=SHARED / "style/vangogh_starry_night.jpg")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = args.presets.split(",")
    engines = {n: Stylizer(recipe(n).with_(size=args.size)) for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.repeats):
        for n in names:
            t0, c0 = time.perf_counter(), os.times()
            engines[n].run(args.content, args.style, seed=0)
            c1 = os.times()
            wall[n].append(time.perf_counter() - t0)
            cpu[n].append(c1.user + c1.system - c0.user - c0.system)
            print(f"{n}: {wall[n][-1]:.1f} s wall, {cpu[n][-1]:.1f} s CPU", file=sys.stderr, flush=True)
    print(f"{args.content.name} + {args.style.name}, {args.size} px, {args.threads} threads, "
          f"median of {args.repeats} interleaved runs; load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| preset | iterations at each level's longest side (px) | wall s | CPU s | all wall s |")
    print("|---|---|---:|---:|---|")
    photo = images.load(args.content)
    for n in names:
        plan = " + ".join(f"{i} at {side}" for side, i in engines[n].levels(photo))
        print(f"| {n} | {plan} | {statistics.median(wall[n]):.1f} | {statistics.median(cpu[n]):.1f} | "
              + ", ".join(f"{w:.1f}" for w in wall[n]) + " |")


if __name__ == "__main__":
    main()

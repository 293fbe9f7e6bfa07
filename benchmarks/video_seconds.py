"""Seconds per video frame at a given size, from its measured parts.

A later frame costs its temporal set-up (optical flow both ways per earlier frame at the flow's size,
occlusion masks, warping) plus `later_iterations` optimiser steps at full size; the first frame (and
every independent one) costs the preset's pyramid levels and then `iterations` steps at full size. At
720p on a small CPU a whole run takes hours, so this times the parts on the first frames of the clip
instead: `--steps` iterations at each level's size after a warm-up, and the temporal set-up of frame 4
against frames 3 (and 2 and 0 for long-term settings); it prints seconds for the first frame and for a
later frame with each count of later iterations (`--later`).

    python benchmarks/video_seconds.py --size 256 1280 --threads 1 --later 38 75
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from brushwork import presets
from brushwork.assets import DEMO_STYLE
from brushwork.optimise import Stylizer
from brushwork.video import LATER_FRACTION, TEMPORAL_FRAMES, _temporal, frame_size, probe, read_frames

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "images" / "video" / "cockatoo.mp4"


def step_seconds(stylizer: Stylizer, frame: Image.Image, style: Path, side: int, steps: int) -> float:
    """Seconds per optimiser step at longest side `side` (after a warm-up step that prepares the targets)."""
    stylizer.config = stylizer.config.with_(size=side, iterations=1)
    stylizer.run(frame, [style])
    stylizer.config = stylizer.config.with_(iterations=steps)
    t0 = time.perf_counter()
    stylizer.run(frame, [style])
    return (time.perf_counter() - t0) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--style", type=Path, default=DEMO_STYLE)
    p.add_argument("--size", type=int, nargs="+", default=[256, 1280])
    p.add_argument("--steps", type=int, default=5, help="optimiser steps timed at each size (after a warm-up)")
    p.add_argument("--later", type=int, nargs="+", help="later-frame iteration counts to report (default: "
                   "the default's)")
    p.add_argument("--temporal-frames", nargs="+", default=[",".join(map(str, TEMPORAL_FRAMES))],
                   help="long-term settings to time the set-up of")
    p.add_argument("--flow-size", nargs="+", default=["input"], help="flow at the input's or the run's size")
    p.add_argument("--threads", type=int)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = probe(args.video)
    preset = presets.DEFAULT
    laters = args.later or [max(1, round(preset.iterations * LATER_FRACTION))]
    rows = []
    for size in args.size:
        dims = frame_size(info, size)
        frames = [f for _, f in zip(range(5), read_frames(info, dims))]
        full = [f for _, f in zip(range(5), read_frames(info, frame_size(info, None)))]
        first = Image.fromarray(frames[0])
        stylizer = Stylizer(preset.with_(size=max(dims)))
        plan = stylizer.levels(first)  # the pyramid's (side, iterations), full size last
        stylizer.config = stylizer.config.with_(pyramid=(), pyramid_iterations=())
        per_step = {side: step_seconds(stylizer, first, args.style, side, args.steps) for side, _ in plan}
        first_s = sum(n * per_step[side] for side, n in plan)
        levels = ", ".join(f"{side} px {per_step[side]:.2f} s/step x {n}" for side, n in plan)
        out = np.asarray(frames[0])
        for flow_at in args.flow_size:
            source = full if flow_at == "input" else frames
            for spec in args.temporal_frames:
                js = [int(j) for j in spec.split(",")]
                t0 = time.perf_counter()
                _temporal(source[4], [(source[4 - j], out) for j in js], "dis", dims, stylizer.device)
                setup = time.perf_counter() - t0
                later_s = {n: setup + n * per_step[max(dims)] for n in laters}
                rows.append({"size": list(dims), "flow_at": flow_at, "temporal_frames": js,
                             "s_per_step": per_step, "plan": plan, "setup_s": setup, "first_frame_s": first_s,
                             "later_frame_s": later_s})
                print(f"{dims[0]}x{dims[1]}: {levels}; first frame {first_s:.1f} s; flow at {flow_at}, frames "
                      f"{spec}: set-up {setup:.2f} s; later frame " +
                      ", ".join(f"{s:.1f} s ({n} steps)" for n, s in later_s.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

"""Seconds per video frame at a given size, from its two measured parts.

A later frame costs its temporal set-up (optical flow both ways per earlier frame at the flow's size,
occlusion masks, warping) plus `later_iterations` optimiser steps; the first frame (and every independent
one) costs `iterations` steps. At 720p on a small CPU a whole run takes hours, so this times the parts on
the first frames of the clip instead: `--steps` iterations of frame 0 after a warm-up, and the temporal
set-up of frame 4 against frames 3 (and 2 and 0 for long-term settings); it prints seconds per frame =
set-up + iterations x seconds per iteration for each setting, with the default iteration counts.

    python benchmarks/video_seconds.py --size 256 1280 --threads 1
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
from brushwork.video import LATER_FRACTION, _temporal, frame_size, probe, read_frames

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "images" / "video" / "cockatoo.mp4"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--style", type=Path, default=DEMO_STYLE)
    p.add_argument("--size", type=int, nargs="+", default=[256, 1280])
    p.add_argument("--steps", type=int, default=5, help="optimiser steps timed (after one warm-up step)")
    p.add_argument("--temporal-frames", nargs="+", default=["1", "1,2,4"],
                   help="long-term settings to time the set-up of")
    p.add_argument("--flow-size", nargs="+", default=["input", "run"], help="flow at the input's or the run's size")
    p.add_argument("--threads", type=int)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = probe(args.video)
    iterations = presets.DEFAULT.iterations
    later = max(1, round(iterations * LATER_FRACTION))
    rows = []
    for size in args.size:
        dims = frame_size(info, size)
        frames = [f for _, f in zip(range(5), read_frames(info, dims))]
        full = [f for _, f in zip(range(5), read_frames(info, frame_size(info, None)))]
        stylizer = Stylizer(presets.DEFAULT.with_(size=max(dims), iterations=1))
        stylizer.run(Image.fromarray(frames[0]), [args.style])  # warm-up: targets, caches
        stylizer.config = stylizer.config.with_(iterations=args.steps)
        t0 = time.perf_counter()
        stylizer.run(Image.fromarray(frames[0]), [args.style])
        per_step = (time.perf_counter() - t0) / args.steps
        out = np.asarray(frames[0])
        for flow_at in args.flow_size:
            source = full if flow_at == "input" else frames
            for spec in args.temporal_frames:
                js = [int(j) for j in spec.split(",")]
                t0 = time.perf_counter()
                _temporal(source[4], [(source[4 - j], out) for j in js], "dis", dims, stylizer.device)
                setup = time.perf_counter() - t0
                row = {"size": list(dims), "flow_at": flow_at, "temporal_frames": js, "s_per_step": per_step,
                       "setup_s": setup, "first_frame_s": iterations * per_step,
                       "later_frame_s": setup + later * per_step}
                rows.append(row)
                print(f"{dims[0]}x{dims[1]}: {per_step:.2f} s/step; flow at {flow_at}, frames {spec}: set-up "
                      f"{setup:.2f} s; first frame {row['first_frame_s']:.1f} s, later frame "
                      f"{row['later_frame_s']:.1f} s ({later} steps)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

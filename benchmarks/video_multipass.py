"""Ruder et al.'s multi-pass scheme, measured against brushwork's single forward pass.

Ruder, Dosovitskiy and Brox (2016, section 3.3; IJCV 2018, section 4.3): stylise every frame
independently first, then sweep the clip alternately forwards and backwards. In a sweep each frame starts
from a blend of its own last result and its neighbour in the sweep's direction warped into it, on the
pixels the flow is trusted for: x = delta c w(neighbour) + (1 - delta c) x_own (their delta = 0.5), and is
optimised with the temporal loss held to that warped neighbour. Disoccluded pixels are never overwritten by
a smeared warp, and every frame is pulled from both sides, so the scheme is meant to spread the
painting's detail along the clip where a single forward pass lets it blur.

Pass 0 is video_consistency.py's independent run (the same frames, reused from its --work folder); each
later pass is judged as video_consistency.py judges a run (DeepFlow on the full-resolution input frames;
Farneback and, for the synthetic pan, its exact flow beside it) against pass 0, with content and style
drift against pass 0 and seconds per frame counting every pass so far:

    python benchmarks/video_multipass.py --video benchmarks/clips/astronaut_pan.mp4 --truth out/pan_truth.npz \
        --frames 10 --size 128 --passes 4 --threads 1 --json benchmarks/results/video-multipass-pan-128.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from video_consistency import INDEPENDENT, JUDGES, ROOT, judge, load_frames, parse_variant, run_variant

from brushwork import images, presets
from brushwork.assets import DEMO_STYLE
from brushwork.evaluate import distances
from brushwork.losses import TemporalTerm
from brushwork.optimise import Stylizer
from brushwork.video import FLOW_SIZE, LATER_FRACTION, TEMPORAL_WEIGHT, _temporal, frame_size, probe, read_frames

DEFAULT_VIDEO = ROOT.parent / "shared" / "images" / "video" / "cockatoo.mp4"


def sweep(frames: list[np.ndarray], flow_frames: list[np.ndarray], outs: list[np.ndarray], forward: bool,
          stylizer: Stylizer, style: Path, delta: float, weight: float, seed: int) -> list[np.ndarray]:
    """One pass over the clip in one direction; returns the new stylised frames (the first in the
    direction is kept as it is)."""
    order = range(len(frames)) if forward else range(len(frames) - 1, -1, -1)
    outs = list(outs)
    size = frames[0].shape[1], frames[0].shape[0]
    previous = None
    for i in order:
        if previous is not None:
            target, mask = _temporal(flow_frames[i], [(flow_frames[previous], outs[previous])], "dis", size,
                                     stylizer.device)
            own = torch.from_numpy(outs[i].astype(np.float32)).permute(2, 0, 1)[None].to(target.device)
            init = delta * mask[0] * target + (1 - delta * mask[0]) * own
            result = stylizer.run(Image.fromarray(frames[i]), [style], init=init,
                                  extra_terms=[(TemporalTerm(target, mask), weight)], seed=seed)
            outs[i] = np.asarray(result.image)
        previous = i
    return outs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--style", type=Path, default=DEMO_STYLE)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--passes", type=int, default=4, help="sweeps after the independent pass, forward first")
    p.add_argument("--pass-iterations", type=int, help="iterations per frame and sweep (default: the "
                   "single pass's later frames)")
    p.add_argument("--delta", type=float, default=0.5, help="Ruder et al.'s blend of the warped neighbour")
    p.add_argument("--temporal-weight", type=float, default=TEMPORAL_WEIGHT)
    p.add_argument("--iterations", type=int, default=presets.DEFAULT.iterations, help="the independent pass's")
    p.add_argument("--precision", default=presets.DEFAULT.precision)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)
    p.add_argument("--judge-python", type=Path, default=ROOT / ".judge-venv" / "bin" / "python")
    p.add_argument("--truth", type=Path)
    p.add_argument("--judge-cache", type=Path, default=ROOT / "out" / "judge-cache")
    p.add_argument("--work", type=Path, default=ROOT / "out" / "video-bench")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    info = probe(args.video)
    dims = frame_size(info, args.size)
    frames = [f for _, f in zip(range(args.frames), read_frames(info, dims))]
    flow_frames = [f for _, f in zip(range(args.frames), read_frames(
        info, frame_size(info, min(FLOW_SIZE, max(info.width, info.height)))))]
    base = presets.DEFAULT.with_(size=args.size, precision=args.precision)
    stylizer = Stylizer(base)
    name, kwargs = parse_variant(INDEPENDENT)
    folder, timing = run_variant(args, args.size, max(info.width, info.height), name, kwargs, stylizer)
    iterations = args.pass_iterations or max(1, round(args.iterations * LATER_FRACTION))
    stylizer.config = base.with_(iterations=iterations, pyramid=(), pyramid_iterations=())
    outs = load_frames(folder, args.frames)
    folders, seconds = [folder], [timing["s_per_frame"] * args.frames]
    stem = f"{args.video.stem}-{args.size}-multipass-{args.frames}-{iterations}-{args.delta}-{args.temporal_weight}"
    for k in range(1, args.passes + 1):
        out = args.work / stem / f"pass{k}"
        if out.is_dir() and len(list(out.glob("*.png"))) == args.frames:
            outs, spent = load_frames(out, args.frames), json.loads((out / "seconds.json").read_text())
        else:
            t0 = time.perf_counter()
            outs = sweep(frames, flow_frames, outs, k % 2 == 1, stylizer, args.style, args.delta,
                         args.temporal_weight, args.seed)
            spent = time.perf_counter() - t0
            out.mkdir(parents=True, exist_ok=True)
            for i, o in enumerate(outs):
                images.save(Image.fromarray(o), out / f"{i:06d}.png")
            (out / "seconds.json").write_text(json.dumps(spent))
        folders.append(out)
        seconds.append(seconds[-1] + spent)
        print(f"pass {k} ({'forward' if k % 2 else 'backward'}): {spent:.0f} s", flush=True)
    judges = JUDGES + (("exact",) if args.truth else ())
    verdicts = {m: judge(args, folders, m) for m in judges}
    rows = []
    for k, (f, s) in enumerate(zip(folders, seconds)):
        d = [distances(Image.fromarray(o), Image.fromarray(i), args.style)
             for o, i in zip(load_frames(f, args.frames), frames)]
        rows.append({"pass": k, **{m: v["outputs"][str(f)] for m, v in verdicts.items()},
                     "content": float(np.mean([x.content for x in d])),
                     "style": float(np.mean([x.style for x in d])), "s_per_frame": s / args.frames})
    lines = [f"Clip {args.video.name}, first {args.frames} frames at {dims[0]}x{dims[1]}; pass 0 = independent "
             f"frames (default preset, {args.iterations} iterations + pyramid), then sweeps of {iterations} "
             f"iterations a frame, delta {args.delta}, temporal weight {args.temporal_weight}. Warping error "
             f"(ratio to pass 0); content/style change against pass 0; s/frame counts every pass so far.", "",
             f"| passes | {' | '.join(judges)} | content | style | s/frame |", "|---|" + "---:|" * (len(judges) + 3)]
    for r in rows:
        errs = " | ".join(f"{r[m]:.2f} ({r[m] / rows[0][m]:.2f})" for m in judges)
        lines.append(f"| {r['pass']} | {errs} | {r['content']:.4f} ({r['content'] / rows[0]['content'] - 1:+.1%}) | "
                     f"{r['style']:.4f} ({r['style'] / rows[0]['style'] - 1:+.1%}) | {r['s_per_frame']:.1f} |")
    lines += ["", "Input frames: " + ", ".join(f"{m} {v['input']:.2f}" for m, v in verdicts.items())]
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "settings": vars(args)}, indent=1, default=str))
        args.json.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

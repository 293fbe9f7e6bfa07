"""Temporal consistency of video stylisation: Ruder et al.'s temporal loss against independent frames.

Runs brushwork.video.stylize_video twice on the same frames with the same settings, once with the
temporal loss (each frame starts from the warped previous result) and once with --temporal-weight 0
(every frame stylised on its own from the content), and prints:

- the temporal warping error (Lai et al. 2018): mean absolute difference, in 0-255 levels, between each
  stylised frame and the previous stylised frame warped by the *input's* flow, over non-occluded pixels
  (forward-backward check and motion boundaries); measured with the run's flow method and, as a check
  that the consistent run is not just fitting its own flow, with Farneback's;
- the mean per-frame content and style distances of `brushwork evaluate` (brushwork.evaluate.distances);
- seconds per frame (the first frame included) on this machine.

    python benchmarks/video_consistency.py --frames 24 --size 256 --iterations 100 \
        --strip benchmarks/video_strip.jpg --json benchmarks/video_consistency.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from machine import cpu_name  # noqa: E402  (benchmarks/machine.py, beside this script)

import numpy as np
import torch
from PIL import Image, ImageDraw

from brushwork import images, presets
from brushwork.assets import DEMO_STYLE
from brushwork.evaluate import distances
from brushwork.optimise import Stylizer
from brushwork.video import (LATER_FRACTION, FrameDone, flow, frame_size, occlusion_mask, probe, read_frames,
                             stylize_video, warp)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "images" / "video" / "cockatoo.mp4"


def warping_errors(inputs: list[np.ndarray], outputs: list[np.ndarray], method: str) -> list[float]:
    """Per pair of consecutive frames: mean |O_t - warp(O_t-1)| over pixels the input's flow trusts."""
    errs = []
    for t in range(1, len(inputs)):
        bwd = flow(inputs[t], inputs[t - 1], method)
        fwd = flow(inputs[t - 1], inputs[t], method)
        mask = occlusion_mask(fwd, bwd)
        warped = warp(outputs[t - 1].astype(np.float32), bwd)
        diff = np.abs(outputs[t].astype(np.float32) - warped).mean(-1)
        errs.append(float((diff * mask).sum() / max(mask.sum(), 1.0)))
    return errs


def run_once(name: str, video: Path, style: Path, work: Path, config: presets.Config, stylizer: Stylizer,
             frames: int, temporal_weight: float, first: int, later: int | None, method: str,
             seed: int) -> tuple[list[np.ndarray], list[float]]:
    """Stylise the first `frames` frames; returns the stylised frames and seconds per frame."""
    seconds: list[float] = []
    out = work / f"{name}.mp4"

    def done(f: FrameDone) -> None:
        seconds.append(f.seconds)
        print(f"  {name} frame {f.index:3d}: {f.seconds:6.1f} s, {f.iterations} it, "
              f"reliable {f.reliable:.2f}", flush=True)

    stylize_video(video, [style], out, config=config, temporal_weight=temporal_weight,
                  first_iterations=first, later_iterations=later, flow_method=method, keep_frames=True,
                  max_frames=frames, callback=done, seed=seed, stylizer=stylizer)
    pngs = sorted((work / f"{name}.mp4.frames").glob("*.png"))
    return [np.asarray(Image.open(p).convert("RGB")) for p in pngs], seconds


def strip(rows: list[list[np.ndarray]], labels: list[str], start: int) -> Image.Image:
    """A grid: one row per method, consecutive frames left to right, a label column at the left."""
    h, w = rows[0][0].shape[:2]
    pad, label_w = 4, 110
    sheet = Image.new("RGB", (label_w + len(rows[0]) * (w + pad), len(rows) * (h + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (row, label) in enumerate(zip(rows, labels)):
        draw.text((6, r * (h + pad) + h // 2 - 6), label, fill="black")
        for c, frame in enumerate(row):
            sheet.paste(Image.fromarray(frame), (label_w + c * (w + pad), r * (h + pad)))
    draw.text((6, 4), f"frames {start}-{start + len(rows[0]) - 1}", fill="grey")
    return sheet


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--style", type=Path, default=DEMO_STYLE)
    p.add_argument("--frames", type=int, default=24, help="first N frames of the clip")
    p.add_argument("--size", type=int, nargs="+", help="longest side(s); default 256 on CPU, 512 720 on CUDA")
    p.add_argument("--iterations", type=int, default=100, help="iterations of the first (and every "
                   "independent) frame")
    p.add_argument("--later-iterations", type=int, help="iterations of later consistent frames")
    p.add_argument("--temporal-weight", type=float, default=1.0)
    p.add_argument("--flow", default="dis")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch (1 is fastest on a busy machine)")
    p.add_argument("--strip", type=Path, help="write the input/independent/consistent strip here")
    p.add_argument("--json", type=Path, help="write the figures here (a .md next to it too)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    device = "cuda" if cuda else ("cpu" if args.device == "auto" else args.device)
    sizes = args.size or ([512, 720] if cuda else [256])
    hardware = torch.cuda.get_device_name() if cuda else f"{cpu_name()}, {torch.get_num_threads()} threads"
    print(f"device: {device} ({hardware}); clip {args.video.name}, first {args.frames} frames")
    info = probe(args.video)
    report: dict = {"video": args.video.name, "frames": args.frames, "device": device, "hardware": hardware,
                    "iterations": args.iterations, "later_iterations": args.later_iterations,
                    "temporal_weight": args.temporal_weight, "flow": args.flow,
                    "preset": {k: getattr(presets.DEFAULT, k) for k in
                               ("content_weight", "style_weight", "tv_weight", "pyramid",
                                "pyramid_iterations")},
                    "runs": []}
    for size in sizes:
        # float32 everywhere, so the figures do not depend on whether a CPU has bfloat16.
        config = presets.DEFAULT.with_(size=size, iterations=args.iterations, precision="float32")
        stylizer = Stylizer(config, device=device)
        inputs = [f for _, f in zip(range(args.frames), read_frames(info, frame_size(info, size)))]
        print(f"\n== {size} px ({inputs[0].shape[1]}x{inputs[0].shape[0]}) ==")
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, weight in (("independent", 0.0), ("consistent", args.temporal_weight)):
                t0 = time.perf_counter()
                outs, secs = run_once(name, args.video, args.style, Path(tmp), config, stylizer, args.frames,
                                      weight, args.iterations, args.later_iterations, args.flow, args.seed)
                wall = time.perf_counter() - t0
                d = [distances(Image.fromarray(o), Image.fromarray(i), args.style, device=device)
                     for o, i in zip(outs, inputs)]
                results[name] = {
                    "outputs": outs,
                    "warp_error": float(np.mean(warping_errors(inputs, outs, args.flow))),
                    "warp_error_farneback": float(np.mean(warping_errors(inputs, outs, "farneback"))),
                    "content": float(np.mean([x.content for x in d])),
                    "style": float(np.mean([x.style for x in d])),
                    "s_per_frame": float(np.mean(secs)),
                    "s_per_later_frame": float(np.mean(secs[1:])) if len(secs) > 1 else float(secs[0]),
                    "wall_s": wall,
                }
        ind, con = results["independent"], results["consistent"]
        input_err = float(np.mean(warping_errors(inputs, inputs, args.flow)))
        row = {"size": size, "width": inputs[0].shape[1], "height": inputs[0].shape[0],
               "input_warp_error": input_err,
               **{f"{m}_{k}": v[m] for k, v in results.items() for m in v if m != "outputs"}}
        row["warp_ratio"] = con["warp_error"] / max(ind["warp_error"], 1e-12)
        row["warp_ratio_farneback"] = con["warp_error_farneback"] / max(ind["warp_error_farneback"], 1e-12)
        row["content_change"] = con["content"] / max(ind["content"], 1e-12) - 1
        row["style_change"] = con["style"] / max(ind["style"], 1e-12) - 1
        report["runs"].append(row)
        print(f"\n{'':24}{'independent':>12}{'consistent':>12}")
        print(f"{'warping error (' + args.flow + ')':24}{ind['warp_error']:12.2f}{con['warp_error']:12.2f}"
              f"   ratio {row['warp_ratio']:.2f} (target <= 0.40)")
        print(f"{'warping error (farneb.)':24}{ind['warp_error_farneback']:12.2f}"
              f"{con['warp_error_farneback']:12.2f}   ratio {row['warp_ratio_farneback']:.2f}")
        print(f"{'content distance':24}{ind['content']:12.4f}{con['content']:12.4f}"
              f"   {row['content_change']:+.1%} (target within 10%)")
        print(f"{'style distance':24}{ind['style']:12.4f}{con['style']:12.4f}"
              f"   {row['style_change']:+.1%} (target within 10%)")
        print(f"{'seconds per frame':24}{ind['s_per_frame']:12.2f}{con['s_per_frame']:12.2f}")
        print(f"{'  (later frames)':24}{ind['s_per_later_frame']:12.2f}{con['s_per_later_frame']:12.2f}")
        print(f"(input frames' own warping error: {input_err:.2f})")
        if args.strip and size == sizes[0]:
            n = min(5, args.frames)
            s = max(0, args.frames // 2 - n // 2)
            sheet = strip([inputs[s:s + n], ind["outputs"][s:s + n], con["outputs"][s:s + n]],
                          ["input", "independent", "consistent"], s)
            images.save(sheet, args.strip)
            print(f"strip: {args.strip}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        args.json.with_suffix(".md").write_text(markdown(report))
        print(f"figures: {args.json} and {args.json.with_suffix('.md')}")


def later_default(first: int) -> str:
    return f"{max(1, round(first * LATER_FRACTION))} (the default, {LATER_FRACTION:g} of the first's)"


def markdown(report: dict) -> str:
    preset = ", ".join(f"{k} {v}" for k, v in report.get("preset", {}).items())
    lines = [f"Clip: {report['video']}, first {report['frames']} frames; {report['device']} "
             f"({report['hardware']}); first frame {report['iterations']} iterations, later frames "
             f"{report['later_iterations'] or later_default(report['iterations'])}; "
             f"temporal weight {report['temporal_weight']}; default preset ({preset}), float32; "
             f"flow {report['flow']}.", "",
             "| size | method | warping error | content | style | s/frame |",
             "|---|---|---|---|---|---|"]
    for r in report["runs"]:
        for k in ("independent", "consistent"):
            lines.append(f"| {r['width']}x{r['height']} | {k} | {r[f'warp_error_{k}']:.2f} | "
                         f"{r[f'content_{k}']:.4f} | {r[f'style_{k}']:.4f} | {r[f's_per_frame_{k}']:.2f} |")
        lines.append(f"| | consistent / independent | {r['warp_ratio']:.2f} | {r['content_change']:+.1%} | "
                     f"{r['style_change']:+.1%} | |")
    farneback = "; ".join(f"{r['width']}x{r['height']}: {r['warp_error_farneback_independent']:.2f} vs "
                          f"{r['warp_error_farneback_consistent']:.2f} "
                          f"(ratio {r['warp_ratio_farneback']:.2f})" for r in report["runs"])
    own = "; ".join(f"{r['input_warp_error']:.2f}" for r in report["runs"])
    lines += ["", "Warping error: mean |frame - previous frame warped by the input's flow| in 0-255 levels "
              f"over non-occluded pixels (Lai et al. 2018), with the run's flow. Measured with Farneback's "
              f"flow instead: {farneback}. The input frames' own warping error: {own}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

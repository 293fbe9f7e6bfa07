"""Temporal consistency of video stylisation, judged by flow the method never saw.

Stylises the first frames of a clip with brushwork.video.stylize_video once per setting ("variant"),
always including independent frames (temporal weight 0) as the reference, and reports per variant:

- the warping error under the INDEPENDENT judge (benchmarks/flow_judge.py: DeepFlow on the full-resolution
  input frames, outputs resized up to that resolution, forward-backward mask), and its ratio to
  independent frames: the figure that counts;
- as a labelled diagnostic only, the warping error under the run's own flow (DIS at the run's size with
  brushwork's occlusion mask), which the temporal loss was fitted to;
- the mean per-frame content and style distances of `brushwork evaluate` and their change against
  independent frames;
- seconds per frame (first frame included) on this machine.

The judge runs in its own venv (opencv-contrib cannot share one with opencv-python-headless):

    python -m venv .judge-venv && .judge-venv/bin/pip install numpy opencv-contrib-python-headless
    python benchmarks/video_consistency.py --frames 20 --size 128 --threads 1 --variant default \
        --json benchmarks/results/video-cockatoo-128.json
    python benchmarks/make_pan_clip.py benchmarks/clips/astronaut_pan.mp4 --truth out/pan_truth.npz
    python benchmarks/video_consistency.py --video benchmarks/clips/astronaut_pan.mp4 \
        --truth out/pan_truth.npz --frames 20 --size 128 --threads 1 --variant default

A variant is NAME or NAME:key=value,key=value with stylize_video's keywords (temporal_weight,
later_iterations, flow_size, temporal_frames as 1/2/4); "default" is stylize_video's defaults. Finished
frames are kept under --work, named by their resolved settings, and reused whenever a run asks for the
same settings again.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

from machine import cpu_name  # noqa: E402  (benchmarks/machine.py, beside this script)

import numpy as np
import torch
from PIL import Image, ImageDraw

from brushwork import images, presets
from brushwork.assets import DEMO_STYLE
from brushwork.evaluate import distances
from brushwork.optimise import Stylizer
from brushwork.video import (LATER_FRACTION, FrameDone, flow, frame_size, occlusion_mask, probe, read_frames, stylize_video,
                             warp)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "images" / "video" / "cockatoo.mp4"
JUDGE = Path(__file__).resolve().parent / "flow_judge.py"
JUDGES = ("deepflow", "farneback")  # the judge; the Farneback at full resolution beside it
JUDGE_NAMES = {"deepflow": "judge: DeepFlow", "farneback": "Farneback", "exact": "exact flow"}
INDEPENDENT = "independent:temporal_weight=0"
KEYS = {"temporal_weight": float, "later_iterations": int,
        "flow_size": lambda v: None if v == "input" else int(v),
        "temporal_frames": lambda v: tuple(int(x) for x in v.split("/"))}


def parse_variant(text: str) -> tuple[str, dict]:
    """'long:temporal_frames=1/2/4,temporal_weight=2' -> ('long', {...})."""
    name, _, rest = text.partition(":")
    kwargs = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in KEYS:
            sys.exit(f"variant {text!r}: unknown setting {key!r}; use one of {', '.join(KEYS)}")
        kwargs[key] = KEYS[key](value)
    return name, kwargs


def own_flow_errors(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> list[float]:
    """Diagnostic: warping error under the method's own flow (DIS at the run's size, its own mask)."""
    errs = []
    for t in range(1, len(inputs)):
        bwd = flow(inputs[t], inputs[t - 1])
        mask = occlusion_mask(flow(inputs[t - 1], inputs[t]), bwd)
        diff = np.abs(outputs[t].astype(np.float32) - warp(outputs[t - 1].astype(np.float32), bwd)).mean(-1)
        errs.append(float((diff * mask).sum() / max(mask.sum(), 1.0)))
    return errs


def run_key(video: str, style: str, size: int, precision: str, seed: int, first: int, pyramid: tuple,
            input_side: int, kwargs: dict) -> str:
    """A short hash of everything that changes a run's frames, resolved: defaults filled in (so changing a
    default never reuses old frames), the first frame's pyramid, the flow's size in pixels, and nothing but
    the weight for independent frames (so variants that differ only in name or in how they spell a setting
    share one run). Not the frame count: a run's first N frames do not depend on the frames after them,
    so a longer run extends a shorter one and a shorter one reuses a longer one's frames."""
    s = {**{k: p.default for k, p in inspect.signature(stylize_video).parameters.items() if k in KEYS}, **kwargs}
    resolved = [float(s["temporal_weight"]), first, list(map(list, pyramid))]
    if s["temporal_weight"] > 0:
        flow_side = input_side if s["flow_size"] is None else min(s["flow_size"], input_side)
        resolved += [s["later_iterations"] or max(1, round(first * LATER_FRACTION)), flow_side,
                     sorted(set(s["temporal_frames"]))]
    key = json.dumps([video, style, size, precision, seed, resolved])
    return hashlib.blake2b(key.encode(), digest_size=4).hexdigest()


def run_variant(args: argparse.Namespace, size: int, input_side: int, name: str, kwargs: dict,
                stylizer: Stylizer) -> tuple[Path, dict]:
    """Stylise the first `args.frames` frames for one variant, continuing or reusing a run with the same
    settings; returns its frames folder and timing (seconds of those frames)."""
    c = stylizer.config
    key = run_key(args.video.name, args.style.name, size, args.precision, args.seed, args.iterations,
                  (c.pyramid, c.pyramid_iterations), input_side, kwargs)
    out = args.work / f"{args.video.stem}-{size}-{key}.mp4"
    timing = out.with_suffix(".json")
    frames = out.with_name(out.name + ".frames")
    seconds: list[float] = json.loads(timing.read_text())["s_frames"] if timing.is_file() else []
    if len(seconds) < args.frames:
        def done(f: FrameDone) -> None:
            seconds.append(f.seconds)
            print(f"  {name} frame {f.index:3d}: {f.seconds:6.1f} s, {f.iterations} it, reliable "
                  f"{f.reliable:.2f}", flush=True)

        stylize_video(args.video, [args.style], out, config=c, first_iterations=args.iterations,
                      keep_frames=True, resume=True, max_frames=args.frames, callback=done, seed=args.seed,
                      stylizer=stylizer, **kwargs)
        timing.write_text(json.dumps({"s_frames": seconds, "settings": kwargs}, default=list))
    return frames, {"s_per_frame": float(np.mean(seconds[:args.frames]))}


def judge(args: argparse.Namespace, folders: list[Path], method: str) -> dict:
    flow_args = ["--truth", str(args.truth)] if method == "exact" else ["--flow", method]
    run = subprocess.run([str(args.judge_python), str(JUDGE), str(args.video), *map(str, folders),
                          "--frames", str(args.frames), "--cache", str(args.judge_cache), *flow_args, "--json"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"the judge failed ({run.stderr.strip().splitlines()[-1:]}); it needs its own venv: "
                 f"python -m venv .judge-venv && .judge-venv/bin/pip install numpy opencv-contrib-python-headless")
    return json.loads(run.stdout)


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


def load_frames(folder: Path, count: int) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))[:count]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--style", type=Path, default=DEMO_STYLE)
    p.add_argument("--frames", type=int, default=20, help="first N frames of the clip")
    p.add_argument("--size", type=int, nargs="+", default=[128], help="longest side(s)")
    p.add_argument("--iterations", type=int, default=presets.DEFAULT.iterations,
                   help="iterations of the first (and every independent) frame")
    p.add_argument("--variant", action="append", help="NAME[:key=value,...]; repeat for several "
                   "(default: 'default'); independent frames are always run")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default=presets.DEFAULT.precision,
                   help="the engine's precision (default: the preset's, bfloat16 where the CPU has it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch (1 is fastest on a busy machine)")
    p.add_argument("--judge-python", type=Path, default=ROOT / ".judge-venv" / "bin" / "python")
    p.add_argument("--truth", type=Path, help="the clip's exact flows (make_pan_clip.py --truth): a third judge")
    p.add_argument("--judge-cache", type=Path, default=ROOT / "out" / "judge-cache",
                   help="the judge's flows of the input, kept for the next run")
    p.add_argument("--work", type=Path, default=ROOT / "out" / "video-bench", help="stylised frames kept here")
    p.add_argument("--compare", action="append", metavar="NAME=FOLDER", help="also judge and measure the "
                   "frames in FOLDER (at the run's size), e.g. make_pan_clip.py --painted's consistent painting")
    p.add_argument("--strip", type=Path, help="write an input/independent/first-variant strip here")
    p.add_argument("--json", type=Path, help="write the figures here (a .md next to it too)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    variants = [parse_variant(v) for v in [INDEPENDENT] + (args.variant or ["default"])]

    hardware = torch.cuda.get_device_name() if args.device == "cuda" else \
        f"{cpu_name()}, {torch.get_num_threads()} threads"
    info = probe(args.video)
    report: dict = {"video": args.video.name, "input_size": [info.width, info.height], "frames": args.frames,
                    "device": args.device, "precision": args.precision, "hardware": hardware, "iterations": args.iterations,
                    "style": args.style.name, "runs": []}
    for size in args.size:
        stylizer = Stylizer(presets.DEFAULT.with_(size=size, precision=args.precision), device=args.device)
        inputs = [f for _, f in zip(range(args.frames), read_frames(info, frame_size(info, size)))]
        print(f"\n== {args.video.name}, {size} px ({inputs[0].shape[1]}x{inputs[0].shape[0]}) ==", flush=True)
        side = max(info.width, info.height)
        runs = {name: (kwargs, *run_variant(args, size, side, name, kwargs, stylizer)) for name, kwargs in variants}
        for item in args.compare or []:  # frames made elsewhere, judged and measured alike
            name, _, folder = item.partition("=")
            runs[name] = ({}, Path(folder), {"s_per_frame": float("nan")})
        judges = JUDGES + (("exact",) if args.truth else ())
        verdicts = {m: judge(args, [folder for _, folder, _ in runs.values()], m) for m in judges}
        rows = {}
        for name, (kwargs, folder, timing) in runs.items():
            outs = load_frames(folder, args.frames)
            d = [distances(Image.fromarray(o), Image.fromarray(i), args.style, device=args.device)
                 for o, i in zip(outs, inputs)]
            rows[name] = {"settings": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
                          **{m: v["outputs"][str(folder)] for m, v in verdicts.items()},
                          "own_flow": float(np.mean(own_flow_errors(inputs, outs))),
                          "content": float(np.mean([x.content for x in d])),
                          "style": float(np.mean([x.style for x in d])),
                          "s_per_frame": timing["s_per_frame"]}
        ind = rows["independent"]
        for r in rows.values():
            for m in judges:
                r[f"{m}_ratio"] = r[m] / ind[m]
            r["own_flow_ratio"] = r["own_flow"] / ind["own_flow"]
            r["content_change"] = r["content"] / ind["content"] - 1
            r["style_change"] = r["style"] / ind["style"] - 1
        report["runs"].append({"size": size, "width": inputs[0].shape[1], "height": inputs[0].shape[0],
                               "judges": {m: v["judge"] for m, v in verdicts.items()},
                               "judge_size": [verdicts["deepflow"]["width"], verdicts["deepflow"]["height"]],
                               **{f"input_{m}": v["input"] for m, v in verdicts.items()},
                               "input_own_flow": float(np.mean(own_flow_errors(inputs, inputs))),
                               "variants": rows})
        print(table(report["runs"][-1]), flush=True)
        if args.strip and size == args.size[0]:
            n = min(5, args.frames)
            s = max(0, args.frames // 2 - n // 2)
            first = variants[1][0]
            sheet = strip([inputs[s:s + n], load_frames(runs["independent"][1], args.frames)[s:s + n],
                           load_frames(runs[first][1], args.frames)[s:s + n]],
                          ["input", "independent", first], s)
            images.save(sheet, args.strip)
            print(f"strip: {args.strip}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        args.json.with_suffix(".md").write_text(markdown(report))
        print(f"figures: {args.json} and {args.json.with_suffix('.md')}")


def table(run: dict) -> str:
    judges = list(run["judges"])
    lines = [f"| {run['width']}x{run['height']} | {' | '.join(JUDGE_NAMES[m] for m in judges)} | own flow "
             f"(diagnostic) | content | style | s/frame |", "|---|" + "---:|" * (len(judges) + 4)]
    for name, r in run["variants"].items():
        settings = ", ".join(f"{k} {'/'.join(map(str, v)) if isinstance(v, list) else v}"
                             for k, v in r["settings"].items())
        label = f"{name} ({settings})" if settings else name
        errors = " | ".join(f"{r[m]:.2f} ({r[f'{m}_ratio']:.2f})" for m in judges)
        lines.append(f"| {label} | {errors} | {r['own_flow']:.2f} "
                     f"({r['own_flow_ratio']:.2f}) | {r['content']:.4f} ({r['content_change']:+.1%}) | "
                     f"{r['style']:.4f} ({r['style_change']:+.1%}) | {r['s_per_frame']:.1f} |")
    inputs = " | ".join(f"{run['input_' + m]:.2f}" for m in judges)
    lines.append(f"| input frames | {inputs} | "
                 f"{run['input_own_flow']:.2f} | | | |")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    head = (f"Clip: {report['video']} ({report['input_size'][0]}x{report['input_size'][1]}), first "
            f"{report['frames']} frames; style {report['style']}; {report['device']} ({report['hardware']}); "
            f"default preset, precision {report['precision']}, first frame {report['iterations']} iterations.")
    judge_line = ("Warping error (0-255 levels), ratio to independent frames in brackets. Judge: DeepFlow "
                  "(opencv-contrib) on the full-resolution input frames, outputs resized up to them "
                  "(bicubic), its own forward-backward mask (benchmarks/flow_judge.py); beside it the same "
                  "with Farneback's flow (the issue's judge; a less accurate flow, see the input frames' "
                  "own error); on a synthetic clip also the exact flow it was made with. Own flow: DIS at "
                  "the run's size with "
                  "brushwork's occlusion mask, the flow the temporal loss is fitted to, a diagnostic only. "
                  "Content and style: mean `brushwork evaluate` distances per frame, change against "
                  "independent frames in brackets. s/frame: mean over all frames, the first included.")
    return "\n\n".join([head, judge_line, *(table(r) for r in report["runs"])]) + "\n"


if __name__ == "__main__":
    main()

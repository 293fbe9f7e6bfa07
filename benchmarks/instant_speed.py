"""Speed of instant styles: images per second and peak memory of a trained network, and video frames per
second with the temporal step.

    python benchmarks/instant_speed.py                                  # CPU here, CUDA when present
    python benchmarks/instant_speed.py --model out/train/starry.safetensors --sizes 512 --video-frames 0
    python benchmarks/instant_speed.py --fast starry.jpg --sizes 256,512,720p,1080p   # the arbitrary-style network

Each size runs in its own process (peak memory is that run's alone: resident set on a CPU,
torch.cuda.max_memory_allocated on CUDA), warm: the first calls are not timed. Without --model a
network of --width with untrained weights is timed (the time does not depend on the weights). The video
figure is the whole per-frame step of `brushwork video --model` after decoding: network, the two DIS
flows and occlusion mask, and the blend with the warped previous output (not the PNG write or encode).
With --fast the painting's statistics are cached between calls (as in a video or a batch); the last
column reads the painting afresh for every call. Writes a markdown table to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))  # a bare checkout works without installing brushwork
VIDEO = ROOT.parent / "shared" / "images" / "video" / "cockatoo.mp4"
SIZES = {"256": (256, 256), "512": (512, 512), "1024": (1024, 1024), "1080p": (1920, 1080),
         "720p": (1280, 720), "4k": (3840, 2160)}


def _net(a):
    """The painter timed: the arbitrary-style network with --fast, else a trained (or untrained) network."""
    from brushwork.feedforward.infer import InstantStylizer
    from brushwork.feedforward.modelfile import Model
    from brushwork.nets.transformer import TransformerConfig, TransformerNet
    from brushwork.perceptual import pick_device

    device, model, width, precision, compile = pick_device(a.device), a.model, a.width, a.precision, a.compile
    if a.fast:
        from brushwork.feedforward.wct import DECODERS, WCTStylizer

        return WCTStylizer([a.fast], decoders=a.decoders or DECODERS, device=device, precision=precision)
    if model is None:
        net = TransformerNet(TransformerConfig(width=width)).eval().requires_grad_(False)
        model = Model(net.to(device), {}, Path("untrained.safetensors"))
    return InstantStylizer(model, device=device, precision=precision, compile=compile)


def _peak_mb(device) -> int:
    import torch

    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated() / 2**20)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_image(a) -> dict:
    import torch

    paint = _net(a)
    w, h = SIZES[a.size]
    x = torch.rand(1, 3, h, w, device=paint.device) * 255
    for _ in range(a.warmup):
        paint.tensor(x)
    _sync(paint.device)
    times, cpu = [], []
    for _ in range(a.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        paint.tensor(x)
        _sync(paint.device)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    s = statistics.median(times)
    row = {"size": a.size, "seconds": s, "cpu_seconds": statistics.median(cpu), "images_per_s": 1 / s,
           "peak_mb": _peak_mb(paint.device), "precision": str(paint.dtype).removeprefix("torch.")}
    if a.fast:  # a painting the process has not seen: its file read and statistics in the time
        fresh = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            paint.restyled([a.fast]).tensor(x)
            _sync(paint.device)
            fresh.append(time.perf_counter() - t0)
        row["new_painting_seconds"] = statistics.median(fresh)
    return row


def measure_video(a) -> dict:
    from brushwork import video
    from brushwork.feedforward.infer import TEMPORAL, stylize_frames

    paint = _net(a)
    frames = list(zip(range(a.video_frames + 2), video.read_frames(video.probe(VIDEO), SIZES["720p"])))
    times, cpu, t0, c0 = [], [], time.perf_counter(), time.process_time()
    blend = TEMPORAL if a.temporal is None else a.temporal
    for i, _ in enumerate(stylize_frames(paint, (f for _, f in frames), blend, a.flow)):
        if i >= 2:  # warm, and blending with a previous frame
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
    s = statistics.median(times)
    return {"size": f"720p video, temporal {blend}, {a.flow}", "seconds": s,
            "cpu_seconds": statistics.median(cpu), "images_per_s": 1 / s,
            "peak_mb": _peak_mb(paint.device), "precision": str(paint.dtype).removeprefix("torch.")}


def main() -> None:
    from brushwork.video import FLOW, FLOW_METHODS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a trained model file (default: untrained weights of --width)")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--fast", metavar="PAINTING", help="time the arbitrary-style network with this painting instead "
                                                      "(style statistics cached after the warm-up, as in a video)")
    p.add_argument("--decoders", help="with --fast: the decoder file (default: the bundled one)")
    p.add_argument("--sizes", default="256,512,1024,1080p", help=f"comma-separated, of {', '.join(SIZES)}")
    p.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the network (timed after its warm-up)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--video-frames", type=int, default=10, help="720p frames timed with the temporal step (0: none)")
    p.add_argument("--flow", default=FLOW, choices=FLOW_METHODS)
    p.add_argument("--temporal", type=float, help="the temporal blend of the video figure (default: brushwork's)")
    p.add_argument("--out", type=Path, help="markdown report (default benchmarks/results/instant-speed-<device>.md)")
    p.add_argument("--child", choices=["image", "video"], help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
        print(json.dumps(measure_image(a) if a.child == "image" else measure_video(a)))
        return
    import torch

    from brushwork.perceptual import pick_device
    from machine import cpu_name

    device = pick_device(a.device)
    passed = [f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items()
              if k in ("model", "width", "fast", "decoders", "precision", "device", "repeats", "warmup",
                       "video_frames", "flow", "temporal")
              and v is not None] + (["--compile"] if a.compile else [])
    jobs = [["--child", "image", f"--size={s}"] for s in a.sizes.split(",") if s]
    if a.video_frames:
        jobs.append(["--child", "video"])
    rows = []
    for job in jobs:
        run = subprocess.run([sys.executable, __file__, *passed, *job], capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr[-2000:], file=sys.stderr)
            rows.append({"size": job[-1], "error": run.stderr.strip().splitlines()[-1]})
            continue
        rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    what = (f"arbitrary-style (WCT) with {a.fast}, decoders {a.decoders or 'bundled'}" if a.fast
            else a.model or f"untrained, width {a.width}")
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"{cpu_name()}, {torch.get_num_threads()} threads"
    lines = [f"# Instant styles: speed on {device.type} ({where})", "",
             f"`python benchmarks/instant_speed.py {' '.join(sys.argv[1:])}`; "
             f"model: {what}; torch {torch.__version__}", "",
             "CPU seconds: the process's own CPU time, what the wall time would be on a quiet machine with this "
             "many threads (wall time counts other jobs' share of the cores).", "",
             "| input | precision | seconds | CPU seconds | images (frames) / s | peak memory MB | seconds, a new painting |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['size']} | failed: {r['error']} | | | | | |")
        else:
            fresh = f"{r['new_painting_seconds']:.3f}" if "new_painting_seconds" in r else ""
            lines.append(f"| {r['size']} | {r['precision']} | {r['seconds']:.3f} | {r['cpu_seconds']:.3f} | "
                         f"{r['images_per_s']:.2f} | {r['peak_mb']} | {fresh} |")
    out = a.out or HERE / "results" / f"instant-speed-{device.type}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

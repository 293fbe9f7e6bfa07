"""Speed benchmark: brushwork against neural-style 0.5.7, one after the other on the same machine.

    python benchmarks/speed.py                       # CPU here, or CUDA when a GPU is present
    python benchmarks/speed.py --sizes 256,512 --skip-quality

Prints, and writes to --out (markdown, quoted by the README):
  * milliseconds per iteration at each size (steady state, median), peak memory, achieved TFLOP/s
    (convolution FLOPs of one forward pass to relu5_1 plus the input-gradient backward pass, 2x forward);
  * time to neural-style's 500-iteration quality on astronaut + Starry Night: neural-style's whole
    process for 500 L-BFGS iterations versus `brushwork stylize` with its defaults, start to saved file,
    both scored with `brushwork evaluate`.
neural-style runs from the venv made by benchmarks/neural_style_env.sh (skipped with a note if absent).
Each measurement runs in its own process, so peak memory is that run's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "images"
CONTENT = SHARED / "content/astronaut.png"
STYLE = SHARED / "style/vangogh_starry_night.jpg"
NS_PYTHON = Path(os.environ.get("NS_VENV", ROOT / ".ns-venv")) / "bin" / "python"


def conv_flops(size: int, arch: str = "vgg16", last: str = "relu5_1") -> float:
    """FLOPs of the conv layers up to `last` for a size x size image: forward + input gradient (2x)."""
    from brushwork.models import CONFIGS, layer_names

    names = layer_names(arch)
    stop = names.index(last)
    flops, side, in_ch, i = 0.0, size, 3, 0
    for item in CONFIGS[arch]:
        if i > stop:
            break
        if item == "M":
            side //= 2
            i += 1
        else:
            flops += 2 * in_ch * int(item) * 9 * side * side
            in_ch = int(item)
            i += 2
    return 2 * flops


def measure_iterations(size: int, precision: str, device: str, iterations: int, warmup: int) -> dict:
    """Runs in a child process: ms per iteration of the default engine, and this process's peak memory."""
    import torch

    from brushwork import Stylizer, presets

    config = presets.DEFAULT.with_(size=size, iterations=warmup + iterations, precision=precision,
                                   pyramid=(), pyramid_iterations=())  # time full-size iterations only
    stylizer = Stylizer(config,
                        device=device)
    stamps: list[float] = []

    def tick(step) -> None:
        if stylizer.device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    if stylizer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    stylizer.run(CONTENT, STYLE, callback=tick, seed=0)
    deltas = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:])]
    ms = 1000 * statistics.median(deltas)
    out = {"size": size, "precision": str(stylizer.dtype).replace("torch.", ""), "device": str(stylizer.device),
           "ms_per_iter": round(ms, 1), "tflops": round(conv_flops(size) / (ms / 1000) / 1e12, 3)}
    if stylizer.device.type == "cuda":
        out["peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
        out["gpu"] = torch.cuda.get_device_name()
    else:
        out["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def neural_style(size: int, iterations: int, device: str, output: Path, print_iter: int) -> dict:
    if not NS_PYTHON.exists():
        return {"error": f"neural-style venv not found at {NS_PYTHON}; run benchmarks/neural_style_env.sh"}
    cmd = [str(NS_PYTHON), str(HERE / "ns_baseline.py"), "run", "--content", str(CONTENT), "--style", str(STYLE),
           "--size", str(size), "--iterations", str(iterations), "--device", device,
           "--print-iter", str(print_iter), "--output", str(output), "--eval-python", sys.executable]
    if device == "cuda":
        cmd.append("--cudnn-autotune")
    if iterations >= 500:
        cmd.append("--distances")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip()[-300:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def brushwork_cli(size: int, output: Path, device: str) -> dict:
    """The whole process with default settings, start to saved file, then its distances."""
    exe = shutil.which("brushwork") or sys.executable
    cmd = [exe] if exe.endswith("brushwork") else [exe, "-m", "brushwork.cli"]
    start = time.perf_counter()
    proc = subprocess.run([*cmd, "stylize", str(CONTENT), "--style", str(STYLE), "--size", str(size),
                           "-o", str(output), "--device", device, "-q", "--seed", "0"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-300:]}
    from brushwork import distances

    d = distances(output, CONTENT, STYLE)
    return {"wall_s": round(wall, 1), "content": round(d.content, 4), "style": round(d.style, 4)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_iter":
        size, precision, device, iterations, warmup = sys.argv[2:7]
        print(json.dumps(measure_iterations(int(size), precision, device, int(iterations), int(warmup))))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--device", default="auto")
    p.add_argument("--iterations", type=int, default=10, help="timed iterations per size (after warm-up)")
    p.add_argument("--skip-ns", action="store_true", help="do not run neural-style")
    p.add_argument("--skip-quality", action="store_true", help="skip the time-to-quality race")
    p.add_argument("--out", type=Path, help="markdown report (default benchmarks/results/speed-<device>.md)")
    args = p.parse_args()

    import torch

    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
        "cpu" if args.device == "auto" else args.device)
    sizes = [int(s) for s in args.sizes.split(",")]
    precisions = ["float32", "bfloat16"]
    where = torch.cuda.get_device_name() if device == "cuda" else f"{platform.processor() or 'CPU'}, {os.cpu_count()} cores"
    lines = [f"# Speed: brushwork vs neural-style 0.5.7 ({device}: {where})", "",
             f"torch {torch.__version__}; measured {time.strftime('%Y-%m-%d %H:%M')} by `python benchmarks/speed.py`", "",
             "| size | engine | ms / iteration | speed-up vs neural-style | TFLOP/s | peak memory (MB) |",
             "|---:|---|---:|---:|---:|---:|"]
    tmp = Path(tempfile.mkdtemp(prefix="brushwork-speed-"))
    for size in sizes:
        ns = {} if args.skip_ns else neural_style(size, args.iterations + 10, device, tmp / f"ns{size}.png", 1)
        ns_ms = ns.get("ms_per_iter_median")
        if ns_ms:
            lines.append(f"| {size} | neural-style | {ns_ms:.0f} | 1.0x | {conv_flops(size) / ns_ms / 1e9:.3f} | "
                         f"{ns.get('cuda_max_allocated_mb') or ns.get('peak_rss_mb')} |")
        elif ns:
            print(f"neural-style at {size}: {ns['error']}", file=sys.stderr)
        for precision in precisions:
            r = child(["_iter", str(size), precision, device, str(args.iterations), "3"])
            if "error" in r:
                print(f"brushwork {precision} at {size}: {r['error']}", file=sys.stderr)
                continue
            speedup = f"{ns_ms / r['ms_per_iter']:.2f}x" if ns_ms else "-"
            lines.append(f"| {size} | brushwork {r['precision']} | {r['ms_per_iter']:.1f} | {speedup} | "
                         f"{r['tflops']:.3f} | {r['peak_mb']} |")
            print(lines[-1], flush=True)
    if not args.skip_quality:
        lines += ["", "## Time to neural-style's 500-iteration quality (astronaut + Starry Night, 256 px)", "",
                  "| run | wall time (s) | content | style |", "|---|---:|---:|---:|"]
        ns = {} if args.skip_ns else neural_style(256, 500, device, tmp / "ns500.png", 10)
        if "distances" in ns:
            lines.append(f"| neural-style, 500 L-BFGS iterations | {ns['wall_s']:.1f} | "
                         f"{ns['distances']['content']:.3f} | {ns['distances']['style']:.3f} |")
        ours = brushwork_cli(256, tmp / "ours.png", device)
        if "error" not in ours:
            lines.append(f"| `brushwork stylize` defaults | {ours['wall_s']:.1f} | {ours['content']:.3f} | "
                         f"{ours['style']:.3f} |")
            if "distances" in ns:
                better = (ours["content"] <= ns["distances"]["content"] and ours["style"] <= ns["distances"]["style"])
                lines += ["", f"brushwork is {ns['wall_s'] / ours['wall_s']:.1f}x sooner, "
                              f"{'better' if better else 'NOT better'} on both distances."]
        else:
            print(f"brushwork CLI: {ours['error']}", file=sys.stderr)
    report = "\n".join(lines) + "\n"
    print(report)
    out = args.out or HERE / "results" / f"speed-{device}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()

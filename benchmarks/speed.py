"""Speed benchmark: brushwork against neural-style 0.5.7, one after the other on the same machine.

    python benchmarks/speed.py                       # CPU here, or CUDA when a GPU is present
    python benchmarks/speed.py --sizes 256,512 --skip-quality

Prints, and writes to --out (markdown, quoted by the README):
  * milliseconds per iteration at each size (steady state, median), peak memory, achieved TFLOP/s
    (convolution FLOPs of one forward pass to relu5_1 plus the input-gradient backward pass, 2x forward);
  * time to neural-style's 500-iteration quality on astronaut + Starry Night (256 px on a CPU, 512 px
    on a GPU): neural-style's whole process for 500 L-BFGS iterations; `brushwork stylize` with its
    defaults, start to saved file; and the engine in-process from weights loaded to saved file (first
    image, then a second one, when compiled kernels are warm). All scored with `brushwork evaluate`.

Runs from a bare checkout on any machine with torch: brushwork is imported from src/ when it is not
installed, the two images are in benchmarks/images/, and neural-style comes from benchmarks/.ns-venv
(benchmarks/neural_style_env.sh) or, failing that, from the vendored wheel unpacked beside the
interpreter's own torch and torchvision. Each measurement runs in its own process, so peak memory is
that run's alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONTENT = HERE / "images" / "astronaut.png"
STYLE = HERE / "images" / "vangogh_starry_night.jpg"
NS_VENV = Path(os.environ.get("NS_VENV", ROOT / ".ns-venv"))
NS_WHEEL = HERE / "vendor" / "neural_style-0.5.7-py3-none-any.whl"
# neural-style picks its network from the model's path: it must say vgg and 16, and never 19
NS_MODEL_FALLBACK = Path(tempfile.gettempdir()) / "brushwork-ns" / "vgg16-caffe-brushwork.pth"

if importlib.util.find_spec("brushwork") is None:  # a bare checkout: use the source tree, children too
    sys.path.insert(0, str(ROOT / "src"))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))


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


def peak_memory_mb(device) -> int:
    import torch

    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated() / 2**20)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def measure_iterations(size: int, precision: str, device: str, iterations: int, warmup: int) -> dict:
    """Runs in a child process: ms per iteration of the default engine, and this process's peak memory."""
    import torch

    from brushwork import Stylizer, presets

    config = presets.DEFAULT.with_(size=size, iterations=warmup + iterations + 1, precision=precision,
                                   pyramid=(), pyramid_iterations=())  # time full-size iterations only
    stylizer = Stylizer(config, device=device)
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
    return {"size": size, "precision": str(stylizer.dtype).replace("torch.", ""), "device": str(stylizer.device),
            "ms_per_iter": round(ms, 2), "tflops": round(conv_flops(size) / (ms / 1000) / 1e12, 3),
            "peak_mb": peak_memory_mb(stylizer.device)}


def measure_plain(size: int, precision: str, device: str, iterations: int, warmup: int) -> dict:
    """Runs in a child process: the hardware reference, a bare loop of VGG16 to relu5_1, forward and
    input-gradient backward, in the engine's precision and memory format (compiled where it compiles)."""
    import torch

    from brushwork.models import VGGFeatures
    from brushwork.perceptual import pick_device, pick_precision

    dev = pick_device(device)
    dtype = pick_precision(precision, dev)
    net = VGGFeatures("vgg16", last_layer="relu5_1").eval().requires_grad_(False)
    net = net.to(dev, dtype, memory_format=torch.channels_last)
    forward = torch.compile(net, mode="reduce-overhead") if dev.type == "cuda" else net
    x = torch.rand(1, 3, size, size, device=dev, dtype=dtype).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    stamps = []
    for _ in range(warmup + iterations + 1):
        out = forward(x, ("relu5_1",))["relu5_1"]
        out.float().square().mean().backward()
        x.grad = None
        if dev.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    ms = 1000 * statistics.median(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:]))
    return {"ms_per_iter": round(ms, 2), "tflops": round(conv_flops(size) / (ms / 1000) / 1e12, 3),
            "precision": str(dtype).replace("torch.", "")}


def measure_engine_race(size: int, device: str, out_dir: str) -> dict:
    """Runs in a child process: the default engine from weights loaded to saved file, twice.

    The second image shows the cost once compiled kernels are warm (a user's second picture)."""
    import torch

    from brushwork import Stylizer, distances, images, presets

    stylizer = Stylizer(presets.DEFAULT.with_(size=size), device=device)
    runs = []
    for n in range(2):
        start = time.perf_counter()
        result = stylizer.run(CONTENT, STYLE, seed=0)
        path = Path(out_dir) / f"engine{n}.png"
        images.save(result.image, path)
        if stylizer.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        d = distances(path, CONTENT, STYLE)
        runs.append({"seconds": round(seconds, 3), "content": round(d.content, 4), "style": round(d.style, 4)})
    return {"runs": runs, "peak_mb": peak_memory_mb(stylizer.device)}


def child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def neural_style_setup(tmp: Path) -> tuple[str, dict[str, str], Path] | str:
    """(python, environment, model file) that run neural-style here, or why nothing can."""
    env = dict(os.environ)
    if (NS_VENV / "bin" / "python").exists():
        python, model = str(NS_VENV / "bin" / "python"), NS_VENV / "models" / "vgg16-caffe-brushwork.pth"
    else:  # a machine without the venv (the GPU machine): the vendored wheel on this interpreter's torch
        missing = [m for m in ("torch", "torchvision") if importlib.util.find_spec(m) is None]
        if missing:
            return f"no {NS_VENV} and this python lacks {', '.join(missing)}; run benchmarks/neural_style_env.sh"
        site = tmp / "ns-site"
        with zipfile.ZipFile(NS_WHEEL) as wheel:
            wheel.extractall(site)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
        python, model = sys.executable, NS_MODEL_FALLBACK
    if not model.exists():
        proc = subprocess.run([python, str(HERE / "ns_baseline.py"), "convert", "--dst", str(model)],
                              env=env, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            return "converting the weights for neural-style failed: " + (proc.stderr or proc.stdout).strip()[-300:]
    return python, env, model


def neural_style(setup: tuple[str, dict[str, str], Path], size: int, iterations: int, device: str,
                 output: Path, print_iter: int) -> dict:
    python, env, model = setup
    cmd = [python, str(HERE / "ns_baseline.py"), "run", "--content", str(CONTENT), "--style", str(STYLE),
           "--size", str(size), "--iterations", str(iterations), "--device", device, "--model", str(model),
           "--python", python, "--print-iter", str(print_iter), "--output", str(output),
           "--eval-python", sys.executable]
    if device == "cuda":
        cmd.append("--cudnn-autotune")
    if iterations >= 500:
        cmd.append("--distances")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip()[-300:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def brushwork_cli(size: int, output: Path, device: str) -> dict:
    """The whole process with default settings, start to saved file, then its distances."""
    exe = shutil.which("brushwork") if importlib.util.find_spec("brushwork.cli") else None
    cmd = [exe] if exe else [sys.executable, "-m", "brushwork.cli"]
    start = time.perf_counter()
    proc = subprocess.run([*cmd, "stylize", str(CONTENT), "--style", str(STYLE), "--size", str(size),
                           "-o", str(output), "--device", device, "-q", "--seed", "0"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-300:]}
    from brushwork import distances

    d = distances(output, CONTENT, STYLE)
    return {"wall_s": round(wall, 1), "content": round(d.content, 4), "style": round(d.style, 4)}


def machine(device: str) -> str:
    import torch

    sys.path.insert(0, str(HERE))
    from machine import cpu_name

    cpu = f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    return f"{torch.cuda.get_device_name()} (host: {cpu})" if device == "cuda" else cpu


def quality_race(args, device: str, setup, tmp: Path) -> list[str]:
    size = args.quality_size or (512 if device == "cuda" else 256)
    lines = ["", f"## Time to neural-style's 500-iteration quality (astronaut + Starry Night, {size} px)", "",
             "| run | wall time (s) | content | style |", "|---|---:|---:|---:|"]
    ns = neural_style(setup, size, 500, device, tmp / "ns500.png", 10) if isinstance(setup, tuple) else {}
    target = ns.get("distances")
    if target:
        lines.append(f"| neural-style, 500 L-BFGS iterations, whole process | {ns['wall_s']:.1f} | "
                     f"{target['content']:.3f} | {target['style']:.3f} |")
        if "optimise_s" in ns:
            lines.append(f"| neural-style, its 500 iterations alone | {ns['optimise_s']:.2f} | | |")
    elif ns:
        print(f"neural-style 500 iterations: {ns['error']}", file=sys.stderr)
    ours = brushwork_cli(size, tmp / "ours.png", device)
    if "error" in ours:
        print(f"brushwork CLI: {ours['error']}", file=sys.stderr)
    else:
        lines.append(f"| `brushwork stylize` defaults, whole process | {ours['wall_s']:.1f} | "
                     f"{ours['content']:.3f} | {ours['style']:.3f} |")
    engine = child(["_race", str(size), device, str(tmp)])
    if "error" in engine:
        print(f"brushwork engine: {engine['error']}", file=sys.stderr)
    else:
        for n, run in enumerate(engine["runs"]):
            what = "first image (compiles, if compiling)" if n == 0 else "second image"
            lines.append(f"| engine from weights loaded to saved file, {what} | {run['seconds']:.2f} | "
                         f"{run['content']:.3f} | {run['style']:.3f} |")
    if target and "error" not in ours:
        better = ours["content"] <= target["content"] and ours["style"] <= target["style"]
        lines += ["", f"Whole process: brushwork is {ns['wall_s'] / ours['wall_s']:.1f}x sooner, "
                      f"{'better' if better else 'NOT better'} on both distances."]
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("_iter", "_plain"):  # a child: one timing, one JSON line
        measure = measure_iterations if sys.argv[1] == "_iter" else measure_plain
        size, precision, device, iterations, warmup = sys.argv[2:7]
        print(json.dumps(measure(int(size), precision, device, int(iterations), int(warmup))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_race":
        size, device, out_dir = sys.argv[2:5]
        print(json.dumps(measure_engine_race(int(size), device, out_dir)))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", help="comma-separated; default 256,512,1024 (CPU), 256,512,1024,2048 (CUDA); '' for none")
    p.add_argument("--device", default="auto")
    p.add_argument("--iterations", type=int, default=10, help="timed iterations per size (after warm-up)")
    p.add_argument("--precisions", default="float32,bfloat16")
    p.add_argument("--quality-size", type=int, help="size of the time-to-quality race (256 CPU, 512 CUDA)")
    p.add_argument("--skip-ns", action="store_true", help="do not run neural-style")
    p.add_argument("--skip-quality", action="store_true", help="skip the time-to-quality race")
    p.add_argument("--out", type=Path, help="markdown report (default benchmarks/results/speed-<device>.md)")
    args = p.parse_args()

    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    default_sizes = "256,512,1024,2048" if device == "cuda" else "256,512,1024"
    sizes = [int(s) for s in (default_sizes if args.sizes is None else args.sizes).split(",") if s]
    tmp = Path(tempfile.mkdtemp(prefix="brushwork-speed-"))
    setup = "skipped (--skip-ns)" if args.skip_ns else neural_style_setup(tmp)
    if isinstance(setup, str):
        print(f"neural-style: {setup}", file=sys.stderr)
    lines = [f"# Speed: brushwork vs neural-style 0.5.7 ({device}: {machine(device)})", "",
             f"torch {torch.__version__}; measured {time.strftime('%Y-%m-%d %H:%M')} by "
             f"`{' '.join(['python benchmarks/speed.py', *sys.argv[1:]])}`", "",
             "| size | engine | ms / iteration | speed-up vs neural-style | TFLOP/s | peak memory (MB) |",
             "|---:|---|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    notes = ["", "Peak memory: " + ("torch.cuda.max_memory_allocated." if device == "cuda" else
                                    "the process's resident set, torch runtime included."),
             "TFLOP/s: convolution FLOPs of a forward pass to relu5_1 plus its input-gradient backward."]
    for size in sizes:
        ns = neural_style(setup, size, args.iterations + 10, device, tmp / f"ns{size}.png", 1) \
            if isinstance(setup, tuple) else {}
        ns_ms = ns.get("ms_per_iter_median")
        if ns_ms:
            lines.append(f"| {size} | neural-style | {ns_ms:.1f} | 1.0x | {conv_flops(size) / ns_ms / 1e9:.3f} | "
                         f"{round(ns.get('cuda_max_allocated_mb') or ns.get('peak_rss_mb'))} |")
            print(lines[-1], flush=True)
        elif ns:
            print(f"neural-style at {size}: {ns['error']}", file=sys.stderr)
        for precision in args.precisions.split(","):
            r = child(["_iter", str(size), precision, device, str(args.iterations), "3"])
            if "error" in r:
                print(f"brushwork {precision} at {size}: {r['error']}", file=sys.stderr)
                continue
            speedup = f"{ns_ms / r['ms_per_iter']:.2f}x" if ns_ms else "-"
            lines.append(f"| {size} | brushwork {r['precision']} | {r['ms_per_iter']:.1f} | {speedup} | "
                         f"{r['tflops']:.3f} | {r['peak_mb']} |")
            print(lines[-1], flush=True)
        plain = child(["_plain", str(size), "auto", device, str(args.iterations), "3"])
        if "error" in plain:
            print(f"plain loop at {size}: {plain['error']}", file=sys.stderr)
        else:
            lines.append(f"| {size} | bare VGG16 loop, {plain['precision']} (hardware reference) | "
                         f"{plain['ms_per_iter']:.1f} | | {plain['tflops']:.3f} | |")
            print(lines[-1], flush=True)
    lines += notes
    if not args.skip_quality:
        lines += quality_race(args, device, setup, tmp)
    report = "\n".join(lines) + "\n"
    print(report)
    out = args.out or HERE / "results" / f"speed-{device}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()

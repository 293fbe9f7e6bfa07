#!/usr/bin/env python3
"""Run neural-style 0.5.7 (PyPI `neural-style`, the PyTorch port of jcjohnson/neural-style) as a
baseline and measure it, so that its figures can be set beside brushwork's.

Subcommands (`run` is the default when the first argument is an option):

  run        run neural-style once and measure it; prints ONE JSON line at the end (and writes it to
             --json). Needs nothing but the standard library itself: neural-style runs in a child
             process with the venv's python (--python, else $NS_VENV/bin/python, else
             <repo>/.ns-venv/bin/python, else this interpreter).
  convert    turn brushwork's VGG16 Caffe safetensors into a .pth that neural-style loads with
             `-model_file X -disable_check` (run with the venv's python; used by neural_style_env.sh).
  distances  brushwork's content/style distances of one output (run with the python that has
             brushwork's dependencies; adds <repo>/src to sys.path itself). Prints one JSON line.

Examples (from the repo root, after `bash benchmarks/neural_style_env.sh`):

  .ns-venv/bin/python benchmarks/ns_baseline.py run \
      --content /work/shared/images/content/astronaut.png \
      --style /work/shared/images/style/vangogh_starry_night.jpg \
      --size 256 --iterations 500 --output benchmarks/baseline/ns_astronaut_starry_256.png --distances
  .ns-venv/bin/python benchmarks/ns_baseline.py run --content C --style S --size 512 --iterations 20 \
      --print-iter 1 --output /tmp/ns512.png
  .ns-venv/bin/python benchmarks/ns_baseline.py run ... --device cuda      # -gpu 0 -backend cudnn

What is measured (all times from the parent's / the child's clock, seconds unless named _ms):
  wall_s            whole child process: interpreter start, torch import, model load, target capture,
                    the optimisation and the final save
  setup_s           child start -> neural-style's "Running optimization" line (imports, model load,
                    image loading, content/style targets)
  optimise_s        "Running optimization" -> the stamp of the last iteration printed
  ms_per_iter       steady state: (stamp of the last printed iteration - stamp of the first printed
                    iteration) / (iterations between them). The stamp of iteration t is taken when
                    neural-style prints "Iteration t" (after forward+backward t). With the default
                    --print-iter 10 the first 10 iterations (warm-up) are left out.
  ms_per_iter_all   optimise_s / iterations printed (warm-up included)
  ms_per_iter_median  median of the per-interval figures (robust to another process stealing the CPU)
  cpu_s             user+sys CPU seconds of the child (less sensitive than wall to other load)
  loadavg_1min_before_after  1-minute load average before/after: a hint of competing work
  peak_rss_mb       ru_maxrss of the child (CPU memory high-water mark, includes the torch runtime)
  cuda_max_allocated_mb / cuda_max_reserved_mb  torch.cuda.max_memory_* inside the child (CUDA only)

One neural-style "iteration" is one function evaluation (forward + backward through VGG16 up to
relu5_1) plus the optimiser's own work; L-BFGS without line search does one evaluation per iteration.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_name  # noqa: E402  (benchmarks/machine.py, beside this script)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_WEIGHTS = Path("/work/shared/weights/vgg16-caffe.safetensors")
FALLBACK_WEIGHTS = ROOT / "src" / "brushwork" / "assets" / "vgg16-caffe.safetensors"
CONTENT_LAYERS = "relu4_2"
STYLE_LAYERS = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1"
# torchvision VGG16 indices of the 13 convolutions
VGG16_CONV_IDX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
ITER_RE = re.compile(r"^Iteration (\d+) / (\d+)")


# --------------------------------------------------------------------------- helpers
def venv_dir() -> Path:
    return Path(os.environ.get("NS_VENV", ROOT / ".ns-venv"))


def default_model() -> Path:
    return Path(os.environ.get("NS_MODEL", venv_dir() / "models" / "vgg16-caffe-brushwork.pth"))


def default_python() -> str:
    cand = venv_dir() / "bin" / "python"
    return str(cand) if cand.exists() else sys.executable


def check_model_name(path: str | os.PathLike) -> None:
    """neural-style picks the architecture from substrings of the WHOLE lower-cased path
    (CaffeLoader.modelSelector): it must contain "vgg" and "16", and none of "pruning", "fcn32s",
    "sod", "19" -- those are tested first and would pick another network (a directory named
    e.g. ".../2019/..." silently selects VGG-19)."""
    p = str(path).lower()
    bad = [s for s in ("pruning", "fcn32s", "sod", "19") if s in p]
    if "vgg" not in p or "16" not in p or bad:
        raise SystemExit(
            f"ns_baseline: neural-style would not read {path} as VGG-16: its path must contain "
            f"'vgg' and '16' and none of 'pruning', 'fcn32s', 'sod', '19' (found {bad}); "
            f"choose another path/name (NS_MODEL / NS_VENV)")


def read_safetensors(path: Path):
    """Minimal safetensors reader (no dependency beyond torch): {name: float32 tensor}."""
    import torch

    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    dtypes = {"F16": torch.float16, "F32": torch.float32, "BF16": torch.bfloat16}
    base = 8 + n
    out = {}
    for name, info in header.items():
        s, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(raw[base + s:base + e]), dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"]).to(torch.float32).clone()
    return out, hashlib.sha256(raw).hexdigest()


# --------------------------------------------------------------------------- convert
def cmd_convert(a) -> int:
    import torch
    from collections import OrderedDict

    src = Path(a.src) if a.src else (DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.exists() else FALLBACK_WEIGHTS)
    dst = Path(a.dst) if a.dst else default_model()
    check_model_name(dst.resolve())
    tensors, sha = read_safetensors(src)
    expected = {f"features.{i}.{k}" for i in VGG16_CONV_IDX for k in ("weight", "bias")}
    if set(tensors) != expected:
        raise SystemExit(f"convert: unexpected keys in {src}: extra {sorted(set(tensors) - expected)}, "
                         f"missing {sorted(expected - set(tensors))}")
    sd = OrderedDict((f"features.{i}.{k}", tensors[f"features.{i}.{k}"].contiguous())
                     for i in VGG16_CONV_IDX for k in ("weight", "bias"))
    if a.with_classifier:
        # Only needed to load WITHOUT -disable_check (strict load_state_dict). Unused by style
        # transfer (neural-style keeps cnn.features only). Zeros; makes the file ~0.5 GB.
        for idx, (o, i) in {0: (4096, 512 * 7 * 7), 3: (4096, 4096), 6: (1000, 4096)}.items():
            sd[f"classifier.{idx}.weight"] = torch.zeros(o, i)
            sd[f"classifier.{idx}.bias"] = torch.zeros(o)

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save(sd, tmp)

    # Verify with neural-style's own loader: the architecture it picks from the name, and that
    # every conv parameter it will use came from our file (with -disable_check it loads with
    # strict=False, which would silently keep random weights for a misnamed key).
    from neural_style.loader.CaffeLoader import modelSelector
    cnn, layer_list = modelSelector(str(dst.resolve()).lower(), "max")
    if len(layer_list["C"]) != 13:
        raise SystemExit("convert: neural-style did not pick VGG-16 for this file name")
    loaded = torch.load(tmp)
    res = cnn.load_state_dict(loaded, strict=False)
    if res.unexpected_keys or any(not k.startswith("classifier.") for k in res.missing_keys):
        raise SystemExit(f"convert: state dict does not fit neural-style's VGG-16: {res}")
    for k, v in cnn.features.state_dict().items():
        if not torch.equal(v, sd["features." + k]):
            raise SystemExit(f"convert: features.{k} did not load")
    os.replace(tmp, dst)
    print(json.dumps({"converted": str(dst), "source": str(src), "source_sha256": sha,
                      "keys": len(sd), "classifier": "zeros" if a.with_classifier else "absent",
                      "bytes": dst.stat().st_size}))
    return 0


# --------------------------------------------------------------------------- worker (child)
class _Stamper:
    """stdout wrapper: passes everything through and stamps 'Iteration t / N' lines."""

    def __init__(self, stream, t0):
        self.stream, self.t0, self.buf = stream, t0, ""
        self.iters: list[tuple[int, float]] = []
        self.opt_start: float | None = None

    def write(self, s):
        now = time.perf_counter() - self.t0
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            m = ITER_RE.match(line)
            if m:
                self.iters.append((int(m.group(1)), now))
            elif line.startswith("Running optimization") and self.opt_start is None:
                self.opt_start = now
        return self.stream.write(s)

    def flush(self):
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def cmd_worker(a) -> int:
    t0 = time.perf_counter()
    stamper = _Stamper(sys.stdout, t0)
    sys.stdout = stamper
    sys.argv = ["neural-style"] + a.ns_args
    import torch
    cuda = "-gpu" in a.ns_args and "c" not in a.ns_args[a.ns_args.index("-gpu") + 1].lower()
    if cuda:
        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats()
    import neural_style.neural_style as ns  # parses sys.argv at import time
    t_import = time.perf_counter() - t0
    ns.main()
    if cuda:
        torch.cuda.synchronize()
    t_end = time.perf_counter() - t0
    sys.stdout = stamper.stream
    info = {"t_import": t_import, "t_end": t_end, "opt_start": stamper.opt_start,
            "iters": stamper.iters, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}
    if cuda:
        info.update(cuda_device=torch.cuda.get_device_name(),
                    cuda_max_allocated_mb=torch.cuda.max_memory_allocated() / 2**20,
                    cuda_max_reserved_mb=torch.cuda.max_memory_reserved() / 2**20,
                    cudnn=torch.backends.cudnn.enabled)
    Path(a.info).write_text(json.dumps(info))
    return 0


# --------------------------------------------------------------------------- distances
def cmd_distances(a) -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from brushwork.evaluate import distances
    d = distances(a.output, a.content, a.style)
    print(json.dumps({"content": d.content, "style": d.style}))
    return 0


def run_distances(eval_python: str, output, content, style) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([eval_python, str(Path(__file__).resolve()), "distances", "--output", str(output),
                        "--content", str(content), "--style", str(style)],
                       env=env, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip().splitlines()[-1:] or ["failed"]}
    return json.loads(p.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- run (parent)
def cmd_run(a) -> int:
    output = Path(a.output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    json_path = Path(a.json).resolve() if a.json else output.with_suffix(".json")
    log_path = Path(a.log).resolve() if a.log else output.with_suffix(".log")
    model = Path(a.model).resolve() if a.model else default_model()
    check_model_name(model)
    if not model.exists():
        raise SystemExit(f"ns_baseline: no model at {model}; run benchmarks/neural_style_env.sh first")
    python = a.python or default_python()
    cuda = a.device == "cuda"
    backend = a.backend or ("cudnn" if cuda else "nn")
    gpu = str(a.gpu) if cuda else "c"

    ns_args = ["-content_image", str(Path(a.content).resolve()), "-style_image", str(Path(a.style).resolve()),
               "-image_size", str(a.size), "-num_iterations", str(a.iterations),
               "-model_file", str(model), "-disable_check", "-backend", backend, "-gpu", gpu,
               "-optimizer", a.optimizer, "-init", a.init, "-seed", str(a.seed),
               "-print_iter", str(a.print_iter), "-save_iter", str(a.save_iter), "-output_image", str(output),
               "-content_layers", CONTENT_LAYERS, "-style_layers", STYLE_LAYERS]
    if cuda and a.cudnn_autotune:
        ns_args.append("-cudnn_autotune")
    ns_args += a.extra
    info_path = json_path.with_name(json_path.name + ".worker")
    cmd = [python, str(Path(__file__).resolve()), "_worker", "--info", str(info_path), "--"] + ns_args
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if output.exists():
        output.unlink()

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        log.write("$ " + shlex.join(["neural-style"] + ns_args) + "\n")
        log.flush()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # the worker is the only child so far
    peak_rss_kb, cpu_s = ru.ru_maxrss, ru.ru_utime + ru.ru_stime
    load_after = os.getloadavg()

    result = {
        "tool": "neural-style 0.5.7", "content": str(Path(a.content).resolve()),
        "style": str(Path(a.style).resolve()), "size": a.size, "iterations": a.iterations,
        "device": a.device, "gpu": gpu, "backend": backend, "optimizer": a.optimizer, "init": a.init,
        "seed": a.seed, "print_iter": a.print_iter, "save_iter": a.save_iter, "model_file": str(model),
        "content_layers": CONTENT_LAYERS, "style_layers": STYLE_LAYERS,
        "output": str(output) if output.exists() else None, "log": str(log_path),
        "returncode": proc.returncode, "wall_s": round(wall, 3),
        "cpu_s": round(cpu_s, 2), "peak_rss_mb": round(peak_rss_kb / 1024, 1),
        "loadavg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "cpu": cpu_name(), "cpu_count": os.cpu_count(),
        "host": platform.node(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": shlex.join(["neural-style"] + ns_args),
    }
    if info_path.exists():
        info = json.loads(info_path.read_text())
        info_path.unlink()
        iters = info.pop("iters")
        opt_start = info.pop("opt_start")
        result.update(torch=info.pop("torch"), torch_threads=info.pop("torch_threads"))
        result["startup_s"] = round(info["t_import"], 3)
        if opt_start is not None:
            result["setup_s"] = round(opt_start, 3)
        if iters:
            last_it, last_t = iters[-1]
            result["iterations_done"] = last_it
            if opt_start is not None:
                result["optimise_s"] = round(last_t - opt_start, 3)
                result["ms_per_iter_all"] = round(1000 * (last_t - opt_start) / last_it, 2)
            if len(iters) >= 2:
                (i0, s0) = iters[0]
                result["ms_per_iter"] = round(1000 * (last_t - s0) / (last_it - i0), 2)
                result["ms_per_iter_span"] = [i0, last_it]
                per = [1000 * (t2 - t1) / (j2 - j1) for (j1, t1), (j2, t2) in zip(iters, iters[1:])]
                result["ms_per_iter_median"] = round(statistics.median(per), 2)
        for k, v in info.items():
            if k not in ("t_import", "t_end"):
                result[k] = round(v, 1) if isinstance(v, float) else v
    if proc.returncode == 0 and a.distances and output.exists():
        result["distances"] = run_distances(a.eval_python, output, a.content, a.style)

    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    result["json"] = str(json_path)
    print(json.dumps(result), flush=True)
    return proc.returncode


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="run neural-style once and measure it")
    r.add_argument("--content", required=True)
    r.add_argument("--style", required=True)
    r.add_argument("--size", type=int, default=256, help="-image_size (longest side), default 256")
    r.add_argument("--iterations", type=int, default=500, help="-num_iterations, default 500")
    r.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cpu -> -gpu c; cuda -> -gpu N")
    r.add_argument("--gpu", type=int, default=0, help="CUDA device index for --device cuda")
    r.add_argument("--backend", default=None,
                   help="-backend; default nn on CPU, cudnn on CUDA (neural-style's 'nn' DISABLES cuDNN)")
    r.add_argument("--cudnn-autotune", action="store_true", help="pass -cudnn_autotune (CUDA)")
    r.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    r.add_argument("--init", choices=["random", "image"], default="random")
    r.add_argument("--seed", type=int, default=0, help="-seed (neural-style's own default -1 = unseeded)")
    r.add_argument("--print-iter", type=int, default=10,
                   help="-print_iter; the timing stamps (default 10; use 1 for short runs)")
    r.add_argument("--save-iter", type=int, default=0,
                   help="-save_iter: also write OUTPUT_<t>.png every N iterations, so a run stopped early "
                        "(a 512 px run takes hours on a loaded CPU) still leaves images to judge; 0: off")
    r.add_argument("--model", default=None, help="converted .pth (default $NS_VENV/models/vgg16-caffe-brushwork.pth)")
    r.add_argument("--output", default="out.png", help="-output_image")
    r.add_argument("--json", default=None, help="where to write the figures (default: output with .json)")
    r.add_argument("--log", default=None, help="neural-style's stdout (default: output with .log)")
    r.add_argument("--python", default=None, help="interpreter with neural-style (default: the venv's)")
    r.add_argument("--distances", action="store_true", help="also compute brushwork's distances")
    r.add_argument("--eval-python", default="python3", help="interpreter for --distances (default python3)")
    r.add_argument("extra", nargs="*", help="after --: extra raw neural-style options")

    c = sub.add_parser("convert", help="safetensors -> neural-style .pth")
    c.add_argument("--src", default=None)
    c.add_argument("--dst", default=None)
    c.add_argument("--with-classifier", action="store_true",
                   help="add zero classifier weights (only for loading without -disable_check)")

    d = sub.add_parser("distances", help="brushwork's content/style distances of one image")
    d.add_argument("--output", required=True)
    d.add_argument("--content", required=True)
    d.add_argument("--style", required=True)

    w = sub.add_parser("_worker", help=argparse.SUPPRESS)
    w.add_argument("--info", required=True)
    w.add_argument("ns_args", nargs=argparse.REMAINDER)

    a = ap.parse_args(argv)
    if a.cmd == "_worker":
        if a.ns_args and a.ns_args[0] == "--":
            a.ns_args = a.ns_args[1:]
        return cmd_worker(a)
    return {"run": cmd_run, "convert": cmd_convert, "distances": cmd_distances}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

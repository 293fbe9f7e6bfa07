"""Peak memory of short CPU runs against `brushwork.memory.estimate`, and the linear fit behind it.

    python benchmarks/memory.py            # a few minutes; table to benchmarks/results/memory.md

Each run is a fresh process (astronaut.png + picabia_udnie.jpg, both square, 3 iterations, --history 2
so the L-BFGS pairs it touches are the ones `memory.MEASURED_PAIRS` counts); its peak resident set is the
kernel's ru_maxrss of the child. Runs with --history 100 and --style-scale 2 check the model's other
two terms. It prints two fits of the --history 2 runs of each precision: least squares, and the line
through the two largest sizes, where memory runs short (`memory.py` holds the highest such line of its
measurements raised 10%, so no measured run, default ones with 20 pairs included, is above its estimate).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from brushwork import memory, presets  # noqa: E402

SHARED = ROOT.parent / "shared" / "images"
CONTENT, STYLE = SHARED / "content" / "astronaut.png", SHARED / "style" / "picabia_udnie.jpg"
RUNS = [("bfloat16", 128, []), ("bfloat16", 256, []), ("bfloat16", 512, []), ("bfloat16", 1024, []),
        ("float32", 128, []), ("float32", 256, []), ("float32", 512, []), ("float32", 1024, []),
        ("bfloat16", 256, ["--history", "100", "--iterations", "102"]),
        ("bfloat16", 256, ["--style-scale", "2"])]


def peak_rss(precision: str, size: int, extra: list[str]) -> int:
    """Peak resident bytes of one fresh CLI run (the child's own maximum, from the kernel)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = ("import resource, sys; from brushwork.cli import main; code = main(sys.argv[1:]); "
                  "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")
        args = ["stylize", str(CONTENT), "-s", str(STYLE), "-o", f"{tmp}/o.png", "--size", str(size),
                "--iterations", "3", "--history", "2", "--precision", precision, "-q", *extra]
        run = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"})
    return int(run.stdout.split()[-1]) * 1024  # ru_maxrss is in kB on Linux


def main() -> int:
    rows = []
    for precision, size, extra in RUNS:
        rss = peak_rss(precision, size, extra)
        flags = dict(zip(extra[::2], extra[1::2]))
        config = presets.DEFAULT.with_(size=size, history=int(flags.get("--history", 2)),
                                       style_scale=float(flags.get("--style-scale", 1)))
        dtype = getattr(torch, precision)
        est = memory.estimate(size, size, config, dtype)
        rows.append((precision, size, " ".join(extra), rss, est))
        print(f"{precision:9} {size:5} {' '.join(extra):28} measured {rss / 1e6:7.0f} MB  "
              f"estimate {est / 1e6:7.0f} MB  ({(est - rss) / rss:+.0%})", flush=True)
    lines = ["# Peak memory: measured against the estimate", "",
             f"`python benchmarks/memory.py`: fresh CLI runs, astronaut + Picabia (square), 3 iterations, "
             f"1 thread; peak resident set (ru_maxrss). {os.cpu_count()} CPUs here.", "",
             "| precision | size | flags | measured | estimate | error |", "|---|---|---|---|---|---|"]
    lines += [f"| {p} | {s} | {e or '--history 2'} | {r / 1e6:.0f} MB | {est / 1e6:.0f} MB | {(est - r) / r:+.0%} |"
              for p, s, e, r, est in rows]
    lines += ["", "Fits of the --history 2 runs (bytes = base + per_pixel x pixels):", ""]
    for precision in ("bfloat16", "float32"):
        pts = [(s * s, r) for p, s, e, r, _ in rows if p == precision and not e]
        per_pixel, base = np.polyfit([x for x, _ in pts], [y for _, y in pts], 1)
        (x0, y0), (x1, y1) = sorted(pts)[-2:]
        slope = (y1 - y0) / (x1 - x0)
        lines.append(f"- {precision}: least squares: base {base / 1e6:.0f} MB, {per_pixel:.0f} bytes per pixel; "
                     f"through the two largest: base {(y0 - slope * x0) / 1e6:.0f} MB, {slope:.0f} bytes per pixel")
    text = "\n".join(lines) + "\n"
    out = ROOT / "benchmarks" / "results" / "memory.md"
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Print sizes (tiles.py): how close a tiled run is to a whole one, whether tile borders show, and what
memory and time 2048 / 4096 / 8192 px take on this machine.

    python benchmarks/print_size.py compare --size 1024 --window 640     # tiled vs whole, seams, a corner crop
    python benchmarks/print_size.py scale --sizes 2048 4096 8192 --max-memory 8G   # peak memory, time
    python benchmarks/print_size.py scale --sizes 8192 --max-memory 16G --results FILE  # on CUDA (gpu_check.sh)

compare: the same run (default preset, same seed) whole and tiled, the tiles forced by a memory budget
that holds `--window` px windows; all four judges (benchmarks/judges.py) of each, and the seam measure:
the mean gradient magnitude of the luminance within 2 px of the tiles' borders against elsewhere (1: the
borders are like any other place), for the tiled result and, as a control, the whole one at the same
places. Writes a crop across the first inner tile corner, whole | tiled.
scale: one fresh process per size, `--iterations` (default 1) at the whole-picture solve and in each tile,
peak resident memory (ru_maxrss) and seconds per iteration of each kind. Tables go to
benchmarks/results/print-size.md (appended).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # a bare checkout (the GPU machine) works without installing

from brushwork import Stylizer, images, memory, presets, tiles  # noqa: E402
SHARED = HERE.parents[1] / "shared" / "images"
PHOTO, PAINTING = SHARED / "content/retina.jpg", SHARED / "style/matisse_woman_with_a_hat.jpg"
if not PHOTO.is_file():  # the GPU machine has only this repository: the bundled demo pair
    from brushwork.assets import DEMO_CONTENT as PHOTO, DEMO_STYLE as PAINTING  # noqa: N811
RESULTS = HERE / "results" / "print-size.md"


def border_band(tiling: tiles.Tiling, width: int = 2) -> np.ndarray:
    """True within `width` px of an inner edge of the tiles' own squares."""
    band = np.zeros((tiling.height, tiling.width), bool)
    for top, left, bottom, right in tiling.boxes:
        for edge in (top, bottom):
            if 0 < edge < tiling.height:
                band[max(0, edge - width):edge + width, left:right] = True
        for edge in (left, right):
            if 0 < edge < tiling.width:
                band[top:bottom, max(0, edge - width):edge + width] = True
    return band


def seam(img: Image.Image, band: np.ndarray) -> float:
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    gy, gx = np.gradient(grey)
    magnitude = np.hypot(gx, gy)
    return float(magnitude[band].mean() / magnitude[~band].mean())


def budget(config: presets.Config, width: int, height: int, window: int) -> int:
    return tiles.FULL_PER_PIXEL * width * height + memory.estimate(window, window, config.with_(style_scale=1.0),
                                                                   torch.float32)


def compare(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE))
    import judges

    config = presets.DEFAULT.with_(size=args.size, iterations=args.iterations)
    width, height = images.fit_size(images.load(PHOTO).size, args.size)
    cap = budget(config, width, height, args.window)
    runs = {}
    for name, stylizer in (("whole", Stylizer(config)), ("tiled", Stylizer(config, max_memory=cap))):
        result = stylizer.run(PHOTO, PAINTING, seed=0)
        result.image.save(args.out / f"print-{name}-{args.size}.png")
        runs[name] = result
        print(name, f"{result.seconds:.0f} s", flush=True)
    stylizer = Stylizer(config, max_memory=cap)
    tiling = tiles.choose(width, height, config, stylizer.dtype, memory.budget(stylizer.device, cap))
    band = border_band(tiling)
    rows = []
    for name, result in runs.items():
        scores = judges.score(result.image, images.load(PHOTO), images.load(PAINTING))
        rows.append({"run": name, **{k: round(v, 4) for k, v in scores.items()}, "seam": round(seam(result.image, band), 3),
                     "seconds": round(result.seconds)})
        print(rows[-1], flush=True)
    top, left = tiling.boxes[0][2], tiling.boxes[0][3]  # the first inner corner
    half = 128
    box = (left - half, top - half, left + half, top + half)
    crop = Image.new("RGB", (4 * half + 8, 2 * half), "white")
    crop.paste(runs["whole"].image.crop(box), (0, 0))
    crop.paste(runs["tiled"].image.crop(box), (2 * half + 8, 0))
    crop.save(HERE / "results" / f"print-corner-{args.size}.png")
    with RESULTS.open("a") as f:
        f.write(f"\n## compare: {PHOTO.name} + {PAINTING.name}, {width}x{height}, default preset, "
                f"{args.iterations} iterations at full size, seed 0; tiles {tiling.core} px + {tiling.margin} px "
                f"margin ({len(tiling.boxes)} tiles, forced by a {cap / 1e9:.2f} GB budget)\n\n"
                f"`python benchmarks/print_size.py compare --size {args.size} --iterations {args.iterations} "
                f"--window {args.window}`\n\n| run | " + " | ".join(k for k in rows[0] if k != "run") + " |\n|---|"
                + "---|" * (len(rows[0]) - 1) + "\n")
        for row in rows:
            f.write("| " + " | ".join(str(v) for v in row.values()) + " |\n")


def one(args: argparse.Namespace) -> None:
    """One size in this process: JSON with the plan, peak memory and seconds per iteration."""
    config = presets.DEFAULT.with_(size=args.size, iterations=args.iterations, pyramid=(), pyramid_iterations=())
    stylizer = Stylizer(config, max_memory=args.max_memory)
    stamps = []

    def stamp(step) -> None:
        stamps.append((time.perf_counter(), step.tile))
        if args.tiles and step.tile and step.tile[0] > args.tiles:
            raise KeyboardInterrupt  # enough tiles for the time per tile; memory peaks in the first

    start = time.perf_counter()
    result = stylizer.run(PHOTO, PAINTING, seed=0, callback=stamp)
    width, height = result.image.size
    tiling = tiles.choose(width, height, config, stylizer.dtype, memory.budget(stylizer.device, args.max_memory))
    whole = [t for t, tile in stamps if tile is None]
    tiled = [t for t, tile in stamps if tile is not None]
    print(json.dumps({
        "size": f"{width}x{height}", "tiles": len(tiling.boxes) if tiling else 0,
        "tiles done": result.partial.done if result.partial else (len(tiling.boxes) if tiling else 0),
        "tile": f"{tiling.core}+2x{tiling.margin}" if tiling else "-",
        "first whole iteration s (with set-up)": round(whole[0] - start, 1) if whole else None,
        "first tile iteration s (with the style's Grams)": round(tiled[0] - whole[-1], 1) if tiled and whole else None,
        "tile iteration s": round((tiled[-1] - tiled[0]) / (len(tiled) - 1), 1) if len(tiled) > 1 else None,
        "total s": round(time.perf_counter() - start, 1),
        "peak MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **({"GPU peak MB": round(torch.cuda.max_memory_allocated() / 2**20)} if stylizer.device.type == "cuda" else {}),
        "precision": str(stylizer.dtype).removeprefix("torch.")}))


def scale(args: argparse.Namespace) -> None:
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "one", "--size", str(size), "--iterations", str(args.iterations),
               "--tiles", str(args.tiles)]
        if args.max_memory:
            cmd += ["--max-memory", str(args.max_memory)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            print(out.stderr[-2000:], file=sys.stderr)
            rows.append({"size": size, "error": out.stderr.strip().splitlines()[-1][:200]})
        else:
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with args.results.open("a") as f:
        f.write(f"\n## scale: {PHOTO.name} + {PAINTING.name}, {args.iterations} iteration(s) at the whole-picture solve "
                f"(half the size or what fits) and in each tile" + (f", stopped after {args.tiles} tiles" if args.tiles
                                                                    else "") + ", --max-memory "
                f"{args.max_memory / 1e9 if args.max_memory else 'free'} GB, one thread\n\n"
                f"`python benchmarks/print_size.py scale --sizes {' '.join(map(str, args.sizes))} --iterations "
                f"{args.iterations} --tiles {args.tiles}" + (f" --max-memory {args.max_memory}" if args.max_memory else "")
                + "`\n\n| "
                + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n")
        for row in rows:
            f.write("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--size", type=int, default=1024)
    c.add_argument("--iterations", type=int, default=75)
    c.add_argument("--window", type=int, default=640, help="the side of the tile windows the budget holds")
    c.add_argument("--out", type=Path, default=HERE.parent / "out")
    s = sub.add_parser("scale")
    s.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    s.add_argument("--iterations", type=int, default=1)
    s.add_argument("--max-memory", type=memory.parse_size)
    s.add_argument("--results", type=Path, default=RESULTS)
    s.add_argument("--tiles", type=int, default=0, help="stop after this many tiles (0: all)")
    o = sub.add_parser("one")
    o.add_argument("--size", type=int, required=True)
    o.add_argument("--iterations", type=int, default=1)
    o.add_argument("--max-memory", type=int)
    o.add_argument("--tiles", type=int, default=0)
    args = ap.parse_args()
    {"compare": compare, "scale": scale, "one": one}[args.mode](args)


if __name__ == "__main__":
    main()

"""Print sizes (tiles.py): how close a tiled run is to a whole one, whether tile borders show, and what
memory and time 2048 / 4096 / 8192 px take on this machine.

    python benchmarks/print_size.py compare --size 2048 --window 1312    # tiled vs whole, seams, a corner crop
    python benchmarks/print_size.py scale --sizes 2048 4096 8192 --max-memory 8G   # peak memory, time
    python benchmarks/print_size.py scale --sizes 8192 --max-memory 16G --results FILE  # on CUDA (gpu_check.sh)
    python benchmarks/print_size.py fits          # small prints within the --max-memory their plan fits in

compare: the same full-size iterations (default preset, same seed, from the same start: the whole picture
solved at `--start` px, default preset) whole and tiled, each in a fresh process, the tiles forced by a memory
budget that holds `--window` px windows; CPU seconds an iteration, peak memory, all four judges (benchmarks/judges.py) of each, and the seam measure:
the mean gradient magnitude of the luminance within 2 px of the tiles' borders against elsewhere (1: the
borders are like any other place), for the tiled result and, as a control, the whole one at the same
places; and "seam, beside": the same band against the strips 8-24 px either side of the borders, which controls
for what the picture has where the borders fall. Writes a crop across the first inner tile corner, whole | tiled.
fits: small and medium prints (shallow layers too) under a --max-memory that forces tiles: peak resident
memory against that budget and against the plan's own figure (tiles.need).
scale: one fresh process per size, `--iterations` (default 1) at the whole-picture solve (half the size or
what fits) and at full size, peak resident memory (ru_maxrss) and seconds per iteration of each kind. Tables go to
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


def border_band(tiling: tiles.Tiling, width: int = 2, offset: int = 0) -> np.ndarray:
    """True from `offset` to `offset + width` px either side of an inner edge of the tiles' own squares."""
    band = np.zeros((tiling.height, tiling.width), bool)
    for top, left, bottom, right in tiling.boxes:
        for edge, size, horizontal in ((top, tiling.height, True), (bottom, tiling.height, True),
                                       (left, tiling.width, False), (right, tiling.width, False)):
            if not 0 < edge < size:
                continue
            for lo, hi in ((edge - offset - width, edge - offset), (edge + offset, edge + offset + width)):
                strip = slice(max(0, lo), max(0, hi))
                if horizontal:
                    band[strip, left:right] = True
                else:
                    band[top:bottom, strip] = True
    return band


def seam(img: Image.Image, band: np.ndarray, other: np.ndarray | None = None) -> float:
    """Mean gradient magnitude of the luminance on `band` against `other` (default: everywhere else)."""
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    gy, gx = np.gradient(grey)
    magnitude = np.hypot(gx, gy)
    return float(magnitude[band].mean() / magnitude[~band if other is None else other].mean())


def compare(args: argparse.Namespace) -> None:
    """Whole against tiled at full size from the same start (the whole picture solved at `--start` px), each
    in a fresh process: judges, seams, CPU seconds, peak memory."""
    sys.path.insert(0, str(HERE))
    import judges

    config = presets.DEFAULT.with_(size=args.size, iterations=args.iterations, pyramid=(), pyramid_iterations=())
    width, height = images.fit_size(images.load(args.photo).size, args.size)
    args.out.mkdir(parents=True, exist_ok=True)
    custom_pair = (args.photo.resolve(), args.painting.resolve()) != (PHOTO.resolve(), PAINTING.resolve())
    tag = f"{args.photo.stem}-{args.painting.stem}-" if custom_pair else ""  # the default pair keeps its files' names
    start = args.out / f"print-start-{tag}{args.start}.png"
    if not start.is_file():  # the print workflow: a small whole solve first, the same for both runs
        Stylizer(presets.DEFAULT.with_(size=args.start)).run(args.photo, args.painting, seed=0).image.save(start)
    # a --max-memory that holds the full-size buffers and windows of side `window`, not the whole picture
    cap = tiles.need(width, height, config, torch.float32, args.window, config.history)
    runs, rows = {}, []
    for name, limit in (("whole", None), ("tiled", cap)):
        path = args.out / f"print-{name}-{tag}{args.size}.png"
        cmd = [sys.executable, __file__, "one", "--size", str(args.size), "--iterations", str(args.iterations),
               "--init", str(start), "--save", str(path), "--photo", str(args.photo), "--painting", str(args.painting)]
        cmd += ["--max-memory", str(limit)] if limit else []
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        runs[name] = (images.load(path), json.loads(out.stdout.strip().splitlines()[-1]))
        print(name, runs[name][1], flush=True)
    stylizer = Stylizer(config, max_memory=cap)
    tiling = tiles.choose(width, height, config, stylizer.dtype, memory.budget(stylizer.device, cap))
    band = border_band(tiling)
    # a seam is a jump at the border against its own neighbourhood: the strips 8-24 px either side control for
    # where the borders fall (the retina's busy middle, where a 2 x 2 plan's borders cross, against its black corners)
    beside = border_band(tiling, 16, 8) & ~border_band(tiling, 8)  # clear of every border, corners included
    for name, (image, figures) in runs.items():
        scores = judges.score(image, images.load(args.photo), images.load(args.painting))
        rows.append({"run": name, **{k: round(v, 4) for k, v in scores.items()}, "seam": round(seam(image, band), 3),
                     "seam, beside": round(seam(image, band, beside), 3),
                     "CPU s an iteration": figures["full-size iteration CPU s"], "peak MiB": figures["peak MiB"]})
        print(rows[-1], flush=True)
    top, left = tiling.boxes[0][2], tiling.boxes[0][3]  # the first inner corner
    half = 128
    box = (left - half, top - half, left + half, top + half)
    crop = Image.new("RGB", (4 * half + 8, 2 * half), "white")
    crop.paste(runs["whole"][0].crop(box), (0, 0))
    crop.paste(runs["tiled"][0].crop(box), (2 * half + 8, 0))
    crop.save(HERE / "results" / f"print-corner-{tag}{args.size}.png")
    with RESULTS.open("a") as f:
        f.write(f"\n## compare: {args.photo.name} + {args.painting.name}, {width}x{height}, default preset, {args.iterations} "
                f"iterations at full size from the same start (the whole picture solved at {args.start} px), "
                f"seed 0, one thread; tiled: the whole picture's objective in tiles of {tiling.core} px + "
                f"{tiling.margin} px margin ({len(tiling.boxes)} tiles, forced by a {cap / 1e9:.2f} GB budget)\n\n"
                f"`python benchmarks/print_size.py compare --size {args.size} --iterations {args.iterations} "
                f"--window {args.window} --start {args.start}"
                + (f" --photo {args.photo} --painting {args.painting}" if custom_pair else "") + "`\n\n| run | " + " | ".join(k for k in rows[0] if k != "run") + " |\n|---|"
                + "---|" * (len(rows[0]) - 1) + "\n")
        for row in rows:
            f.write("| " + " | ".join(str(v) for v in row.values()) + " |\n")


def one(args: argparse.Namespace) -> None:
    """One run in this process: JSON with the plan, peak memory and seconds (wall and CPU) per iteration."""
    layers = {k: v for k, v in (("content_layers", args.content_layers), ("style_layers", args.style_layers)) if v}
    # without the histogram term, as measured before it joined the default: tiles leave it out, and a budget that
    # fits the picture only without it paints it whole (tiles.bare), so the tiled run would not be tiled
    config = presets.DEFAULT.with_(size=args.size, iterations=args.iterations, pyramid=(), pyramid_iterations=(),
                                   histogram_weight=0.0, **layers)
    stylizer = Stylizer(config, max_memory=args.max_memory)
    stamps = []

    def stamp(step) -> None:
        stamps.append((time.perf_counter(), time.process_time(), step.level))

    start = time.perf_counter()
    width, height = images.fit_size(images.load(args.photo).size, args.size)
    tiling = tiles.choose(width, height, config, stylizer.dtype, memory.budget(stylizer.device, args.max_memory))
    # from a given start a print goes straight to its full-size iterations, as a resumed run does
    resume = tiles.Partial(tiling, 0) if args.init and tiling else None
    result = stylizer.run(args.photo, args.painting, seed=0, callback=stamp, resume=resume,
                          init=str(args.init) if args.init else None)
    if args.save:
        result.image.save(args.save)
    last = max(level for *_, level in stamps)
    full = [(wall, cpu) for wall, cpu, level in stamps if level == last]
    before = [(wall, cpu) for wall, cpu, level in stamps if level < last]
    print(json.dumps({
        "size": f"{width}x{height}", "tiles": len(tiling.boxes) if tiling else 0,
        "tile": f"{tiling.core}+2x{tiling.margin}" if tiling else "-",
        "L-BFGS pairs": (tiling.history or config.history) if tiling else config.history,
        "plan MB": round((tiles.need(width, height, config, stylizer.dtype, tiling.core + 2 * tiling.margin,
                                     tiling.history or config.history) if tiling
                          else memory.estimate(width, height, config, stylizer.dtype)) / 1e6),
        "whole-picture solve s": round(before[-1][0] - start, 1) if before else None,
        "first full-size iteration s (with targets)": round(full[0][0] - (before[-1][0] if before else start), 1),
        "full-size iteration s": round((full[-1][0] - full[0][0]) / (len(full) - 1), 1) if len(full) > 1 else None,
        "full-size iteration CPU s": round((full[-1][1] - full[0][1]) / (len(full) - 1), 1) if len(full) > 1 else None,
        "total s": round(time.perf_counter() - start, 1), "total CPU s": round(time.process_time(), 1),
        "peak MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),  # ru_maxrss is KiB
        **({"GPU peak MiB": round(torch.cuda.max_memory_allocated() / 2**20)} if stylizer.device.type == "cuda" else {}),
        "precision": str(stylizer.dtype).removeprefix("torch.")}))


def scale(args: argparse.Namespace) -> None:
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "one", "--size", str(size), "--iterations", str(args.iterations)]
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
                f"(half the size or what fits) and at full size, --max-memory "
                f"{args.max_memory / 1e9 if args.max_memory else 'free'} GB, one thread\n\n"
                f"`python benchmarks/print_size.py scale --sizes {' '.join(map(str, args.sizes))} --iterations "
                f"{args.iterations}" + (f" --max-memory {args.max_memory}" if args.max_memory else "")
                + "`\n\n| "
                + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n")
        for row in rows:
            f.write("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |\n")


FITS = [(1024, "883M", "relu3_1", "relu1_1,relu2_1,relu3_1"), (1024, "883M", "relu2_2", "relu1_1,relu2_1,relu3_1"),
        (1024, "1G", "", "relu1_1,relu2_1,relu3_1,relu4_1"), (1024, "1.2G", "", ""), (1536, "2.5G", "", "")]


def fits(args: argparse.Namespace) -> None:
    """Whether prints stay within the --max-memory their plan says they fit: small and medium sizes, default
    and shallow layers (`FITS`: size, budget, content layers, style layers), each a fresh process."""
    rows = []
    for size, cap, content, style in FITS:
        cmd = [sys.executable, __file__, "one", "--size", str(size), "--iterations", str(args.iterations),
               "--max-memory", str(memory.parse_size(cap)), "--photo", str(args.photo)]
        cmd += (["--content-layers", content] if content else []) + (["--style-layers", style] if style else [])
        figures = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        peak = figures["peak MiB"] * 2**20
        rows.append({"size": figures["size"], "layers": f"{content or 'relu4_2'} / {style or 'relu1_1-relu5_1'}",
                     "--max-memory": cap, "tiles": f"{figures['tiles']} of {figures['tile']}",
                     "L-BFGS pairs": figures["L-BFGS pairs"], "plan MB": figures["plan MB"],
                     "peak MB": round(peak / 1e6), "peak / budget": round(peak / memory.parse_size(cap), 3),
                     "CPU s": figures["total CPU s"]})
        print(rows[-1], flush=True)
    with args.results.open("a") as f:
        f.write(f"\n## fits: {args.photo.name} + {PAINTING.name}, {args.iterations} iterations at the whole-picture solve "
                f"and at full size, one thread\n\n`python benchmarks/print_size.py fits --iterations {args.iterations}`"
                "\n\n| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n")
        for row in rows:
            f.write("| " + " | ".join(str(v) for v in row.values()) + " |\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--size", type=int, default=2048)
    c.add_argument("--iterations", type=int, default=10)
    c.add_argument("--window", type=int, default=1312, help="the side of the tile windows the budget holds")
    c.add_argument("--start", type=int, default=256, help="the size of the whole solve both runs start from")
    c.add_argument("--out", type=Path, default=HERE.parent / "out")
    c.add_argument("--photo", type=Path, default=PHOTO)
    c.add_argument("--painting", type=Path, default=PAINTING)
    s = sub.add_parser("scale")
    s.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    s.add_argument("--iterations", type=int, default=1)
    s.add_argument("--max-memory", type=memory.parse_size)
    s.add_argument("--results", type=Path, default=RESULTS)
    f = sub.add_parser("fits")
    f.add_argument("--iterations", type=int, default=3)
    f.add_argument("--photo", type=Path, default=SHARED / "content/chelsea.png")
    f.add_argument("--results", type=Path, default=RESULTS)
    o = sub.add_parser("one")
    o.add_argument("--size", type=int, required=True)
    o.add_argument("--iterations", type=int, default=1)
    o.add_argument("--max-memory", type=int)
    o.add_argument("--init", type=Path, help="start from this picture")
    o.add_argument("--save", type=Path, help="save the result here")
    o.add_argument("--photo", type=Path, default=PHOTO)
    o.add_argument("--painting", type=Path, default=PAINTING)
    o.add_argument("--content-layers", type=lambda text: tuple(text.split(",")), help="L1,L2 (default: the preset's)")
    o.add_argument("--style-layers", type=lambda text: tuple(text.split(",")), help="L1,L2 (default: the preset's)")
    args = ap.parse_args()
    {"compare": compare, "scale": scale, "fits": fits, "one": one}[args.mode](args)


if __name__ == "__main__":
    main()

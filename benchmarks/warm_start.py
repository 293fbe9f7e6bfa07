"""Warm start: the arbitrary-style network's picture as the optimiser's first image, against the photo.

    python benchmarks/warm_start.py --pairs astronaut+starry,chelsea+scream --size 256 --iterations 40

For each pair, the optimiser (the default preset without its pyramid: the fast picture already holds the
large-scale style) runs --iterations from the photo and fast starts; every iteration's image is judged afterwards
(`brushwork evaluate`'s content and style, float32), and the first iteration at which both are at or
below neural-style's 500-iteration result (benchmarks/baseline/ns_<pair>_<size>.png, judged the same
way) is reported with the seconds it took: the setup (the optimiser's network loaded, and for the warm
start the fast picture painted) plus the iterations. --with-default also runs the default preset (with
its pyramid) for reference, and --starts fast-default the default preset from the fast picture (neither
takes --set or --iterations).
Seconds are CPU seconds of this process (the machine is shared: wall time would measure the other
jobs), one torch thread by default; add the interpreter's start and imports (printed) for a whole command.
--set changes the recipe the photo and fast starts run (quality.py's syntax), e.g. --set style_weight=5, or a short
pyramid: --set pyramid=0.125,0.25,0.5 --set pyramid_iterations=20,20,20 --set pyramid_px=32.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import judges
from PIL import Image
from quality import HELD_OUT, PAIRS, SHARED, parse_set
from side_by_side import tile

from brushwork import Stylizer, distances, images, presets
from brushwork.evaluate import judge
from brushwork.feedforward.wct import DECODERS, WCTStylizer

BASELINE = Path(__file__).resolve().parent / "baseline"
STARTS = {"photo", "fast", "fast-default", "none"}


def judged_run(config: presets.Config, content: Path, style: Path, init, setup: float) -> tuple[list[dict], list]:
    """Each image the run went through (the start, then after each iteration but the last) at the output's
    size: iterations done, CPU seconds (setup included) and judged distances; and the images."""
    t0 = time.process_time()
    stylizer = Stylizer(config)
    steps: list[tuple[float, object]] = []
    stylizer.run(content, [style], init=init, seed=0,
                 callback=lambda step: steps.append((time.process_time() - t0, step.image.detach().clone())))
    final = images.to_image(steps[-1][1]).size
    measure = judge(content, style, final)
    rows, pictures = [], []
    for i, (seconds, image) in enumerate(steps, 1):
        picture = images.to_image(image)
        if picture.size == final:  # a pyramid's coarser levels are not outputs of this size
            d = measure(picture)
            rows.append({"iteration": i - 1, "seconds": setup + seconds, "content": d.content, "style": d.style})
            pictures.append(picture)
    return rows, pictures


def table(results: list[dict]) -> str:
    """Markdown: per pair and start, where the run first reached neural-style (iteration, CPU seconds, the
    four judges there) and where it ended."""
    def judged(r: dict) -> str:
        return " / ".join(f"{r[k]:.3f}" for k in ("content", "style", "edges", "embedding") if k in r)
    lines = ["| pair | start | neural-style content / style | first at or below both: iteration (CPU s) | "
             "judges there | last: iteration (CPU s) | judges there |", "|---|---|---|---|---|---|---|"]
    for r in results:
        hit, last = r["reached"], r["last"]
        lines.append(f"| {r['pair']} | {r['start']} | {r['ns'][0]:.3f} / {r['ns'][1]:.3f} | "
                     + (f"{hit['iteration']} ({hit['seconds']:.1f}) | {judged(hit)}" if hit else "not reached | ")
                     + f" | {last['iteration']} ({last['seconds']:.1f}) | {judged(last)} |")
    return "\n".join(lines)


def picture(results: list[dict], folder: Path, output: Path, cell: int = 128) -> None:
    """A row per pair: neural-style's picture, then each start's first picture at its quality and its last
    (the --out pictures of the runs in `results`)."""
    sheet_rows = []
    for name in dict.fromkeys(r["pair"] for r in results):
        cells = [tile(images.load(BASELINE / f"ns_{name.replace('+', '_')}_256.png"), cell, [name, "neural-style 500"])]
        for r in (r for r in results if r["pair"] == name):
            start = r["start"].split()[0]
            for what, row in (("reached", r["reached"]), ("last", r["last"])):
                path = folder / f"{name}_{start}_{what}.png"
                blank = Image.new("RGB", (cell, cell), "white")
                cells.append(tile(images.load(path) if row else blank, cell,
                                  [f"{r['start']}, iteration {row['iteration']}" if row else f"{r['start']}: not reached",
                                   f"{row['content']:.3f} / {row['style']:.3f}" if row else ""]))
        sheet_rows.append(cells)
    width = max(len(c) for c in sheet_rows)
    sheet = Image.new("RGB", (width * cell, sum(c[0].height for c in sheet_rows)), "white")
    for i, cells in enumerate(sheet_rows):
        for j, c in enumerate(cells):
            sheet.paste(c, (j * cell, i * c.height))
    images.save(sheet, output)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", default="astronaut+starry")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=40)
    p.add_argument("--strength", type=float, default=1.0, help="of the fast picture")
    p.add_argument("--decoders", type=Path, default=DECODERS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--with-default", action="store_true", help="also run the default preset (its pyramid)")
    p.add_argument("--starts", default="photo,fast", help="comma-separated, of photo, fast (both single scale) and "
                   "fast-default (the default preset from the fast picture); none: only --with-default")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the recipe both starts run (e.g. style_weight=5)")
    p.add_argument("--json", type=Path, help="every judged iteration, written after each pair")
    p.add_argument("--table", type=Path, nargs="+", metavar="JSON", help="print the markdown table of "
                   "earlier runs' --json files and stop")
    p.add_argument("--picture", type=Path, help="with --table: a sheet of neural-style's picture and each "
                   "start's, from the pictures in --out")
    p.add_argument("--out", type=Path, default=Path("out/warm_start"), help="the pictures where each run "
                   "first reached neural-style, and its last; judged by all four judges (benchmarks/judges.py)")
    a = p.parse_args()
    if a.table:
        results = [r for path in a.table for r in json.loads(path.read_text())]
        print(table(results))
        if a.picture:
            picture(results, a.out, a.picture)
        return

    import torch

    torch.set_num_threads(a.threads)
    start = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import brushwork.cli, "
                            "brushwork.feedforward.wct, torch; print(time.perf_counter() - t)"],
                           capture_output=True, text=True, check=True)
    print(f"imports: {float(start.stdout):.2f} s (plus the interpreter's start)")
    a.out.mkdir(parents=True, exist_ok=True)
    embed = judges.available()
    plain = presets.DEFAULT.with_(size=a.size, iterations=a.iterations,
                                  **{"pyramid": (), "pyramid_iterations": (), **parse_set(a.set)})
    starts = a.starts.split(",")
    if set(starts) - STARTS or ("none" in starts and len(starts) > 1):
        p.error(f"--starts takes {', '.join(sorted(STARTS - {'none'}))}, comma-separated, or none alone; not {a.starts}")
    if starts == ["none"] and not a.with_default:
        p.error("--starts none runs nothing without --with-default")
    results = []
    for name in a.pairs.split(","):
        content, style = (SHARED / f for f in {**PAIRS, **HELD_OUT}[name])
        ns = distances(BASELINE / f"ns_{name.replace('+', '_')}_{a.size}.png", content, style)
        fast, fast_seconds, runs = None, 0.0, {}
        if {"fast", "fast-default"} & set(starts):
            t0 = time.process_time()
            fast = WCTStylizer([style], decoders=a.decoders, strength=a.strength)(content, a.size)
            fast_seconds = time.process_time() - t0
            d = distances(fast, content, style)
        if "photo" in starts:
            runs["photo start"] = judged_run(plain, content, style, "content", 0.0)
        if "fast" in starts:
            runs["fast start"] = judged_run(plain, content, style, fast, fast_seconds)
        if a.with_default:
            runs["default preset"] = judged_run(presets.DEFAULT.with_(size=a.size), content, style, None, 0.0)
        if "fast-default" in starts:  # the default preset unchanged (no --set, --iterations), from the fast picture
            runs["fast-default start"] = judged_run(presets.DEFAULT.with_(size=a.size), content, style, fast,
                                                    fast_seconds)
        for label, (rows, pictures) in runs.items():
            at = next((i for i, r in enumerate(rows) if r["content"] <= ns.content and r["style"] <= ns.style), None)
            hit = None if at is None else rows[at]
            last = rows[-1]
            for row, what in ((hit, "reached"), (last, "last")):
                if row is not None:  # all four judges, the embedding among them: the one neither run optimises
                    path = a.out / f"{name}_{label.split()[0]}_{what}.png"
                    images.save(pictures[rows.index(row)], path)
                    row.update(judges.score(path, content, style, embed=embed))
            results.append({"pair": name, "start": label, "ns": [ns.content, ns.style],
                            **({"fast": [d.content, d.style, fast_seconds]} if fast is not None else {}),
                            "reached": hit, "last": last, "rows": rows})
            where = (f"iteration {hit['iteration']}, {hit['seconds']:.1f} s ({hit['content']:.3f} / {hit['style']:.3f})"
                     if hit else "not reached")
            print(f"{name:18} {label:15} ns {ns.content:.3f} / {ns.style:.3f}: {where}; after {last['iteration']}: "
                  f"{last['content']:.3f} / {last['style']:.3f} in {last['seconds']:.1f} s", flush=True)
        if fast is not None:
            print(f"{name:18} fast picture alone: {d.content:.3f} / {d.style:.3f} in {fast_seconds:.2f} s", flush=True)
        if a.json:
            a.json.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()

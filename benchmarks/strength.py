"""--strength's calibration: fit it on the shared pairs, then the spread of content distance before and after.

Runs come from benchmarks/quality.py (256 px, the default's iterations), one JSON per run:

    # fixed weights (before): style weight 0.5 / 2 / 8 = strength 0.25 / 0.5 / 0.75 uncalibrated
    python benchmarks/quality.py --checkpoints 75 --pairs astronaut+starry --set style_weight=0.5 --json F.json
    # calibrated (after)
    python benchmarks/quality.py --checkpoints 75 --pairs brick+turner --set strength=0.25 --json C.json

    python benchmarks/strength.py fit out/strength/fixed_*.json          # the constants of strength.py
    python benchmarks/strength.py table out/strength/*.json --markdown   # spread before and after
    python benchmarks/strength.py picture out/strength/cal_*.json --pair brick+turner --out strip.jpg

`fit` regresses log content distance on log style weight over the shared pairs only (strength.A, strength.B):
the content distance a strength means, which a run then steers to.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import numpy as np
import quality
from PIL import Image
from side_by_side import tile

from brushwork import images, presets, strength


def rows(paths: list[Path]) -> list[dict]:
    found = []
    for path in paths:
        for row in json.loads(path.read_text()):
            if row["iterations"] != presets.DEFAULT.iterations:  # an earlier checkpoint of the run
                continue
            given = row["config"].get("strength", "None")
            row["strength"] = None if given == "None" else float(given)
            row["style_weight"] = float(row["config"]["style_weight"])
            found.append(row)
    return found


def uncalibrated(weight: float) -> float:
    """The strength whose starting weight is `weight` (strength.start)."""
    r = (weight / strength.MIDDLE) ** (1 / strength.GAIN)
    return r / (1 + r)


def fit(found: list[dict]) -> None:
    """strength.A and strength.B: least squares of log content distance on log style weight over the shared
    pairs' fixed-weight runs (their average pair's curve), and how far each run lies from that line."""
    shared = [r for r in found if r["strength"] is None and r["pair"] in quality.PAIRS]
    w = np.log([r["style_weight"] for r in shared])
    y = np.log([r["content"] for r in shared])
    (a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(w), w], 1), y, rcond=None)
    for r, residual in zip(shared, y - a - b * w):
        print(f"{r['pair']:18} style weight {r['style_weight']:g}: content {r['content']:.3f}, "
              f"{math.exp(residual):.2f} x the line")
    print(f"{len(shared)} runs on {len({r['pair'] for r in shared})} shared pairs: A, B = {a:.2f}, {b:.2f}")


def table(found: list[dict], markdown: bool) -> None:
    """Content distance per pair at each strength, before (fixed weights) and after (calibrated)."""
    cells: dict[tuple[float, str], dict[str, float]] = {}
    for r in found:
        s = r["strength"] if r["strength"] is not None else round(uncalibrated(r["style_weight"]), 3)
        cells.setdefault((s, "after" if r["strength"] is not None else "before"), {})[r["pair"]] = r["content"]
    pairs = [*quality.PAIRS, *quality.HELD_OUT]
    head = ["strength", "", *pairs, "max/min", "std", "std/mean"]
    print(("| " + " | ".join(head) + " |\n|" + "---|" * len(head)) if markdown else "  ".join(head))
    for (s, when), got in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1] != "before")):
        values = [got[p] for p in pairs if p in got]
        spread = [f"{max(values) / min(values):.2f}", f"{statistics.pstdev(values):.3f}",
                  f"{statistics.pstdev(values) / statistics.mean(values):.2f}"] if len(values) > 1 else ["", "", ""]
        aim = f", target {strength.target(s):.3f}" if when == "after" else ""
        line = [f"{s:g}", f"{when} ({len(values)} pairs{aim})", *(f"{got[p]:.3f}" if p in got else "" for p in pairs),
                *spread]
        print(("| " + " | ".join(line) + " |") if markdown else "  ".join(line))


def picture(found: list[dict], pair: str, images_from: str, out: Path) -> None:
    """The photo, the calibrated runs on `pair` at each strength (images under `images_from`, formatted with
    the strength) and the painting, in one strip with each run's content / Gram style / embedding."""
    content, style = ({**quality.PAIRS, **quality.HELD_OUT}[pair])
    runs = sorted((r for r in found if r["pair"] == pair and r["strength"] is not None), key=lambda r: r["strength"])
    cells = [tile(images.load(quality.SHARED / content), 256, ["photo"])]
    for r in runs:
        path = Path(images_from.format(strength=r["strength"])) / f"{pair}_{r['size']}_{r['iterations']}.png"
        cells.append(tile(images.load(path), 256, [f"--strength {r['strength']:g}",
                                                  f"content {r['content']:.2f}, style {r['style']:.2f}",
                                                  f"embedding {r['embedding']:.2f}"]))
    cells.append(tile(images.load(quality.SHARED / style), 256, ["painting"]))
    strip = Image.new("RGB", (sum(c.width for c in cells), cells[0].height), "white")
    for i, c in enumerate(cells):
        strip.paste(c, (i * c.width, 0))
    strip.save(out, quality=90)
    print(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["fit", "table", "picture"])
    p.add_argument("runs", nargs="+", type=Path, help="quality.py --json files")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--pair", default="brick+turner", help="picture: the pair to show")
    p.add_argument("--images", default="out/strength/img_s{strength:g}", help="picture: quality.py --out of "
                   "the run at each strength")
    p.add_argument("--out", type=Path, default=Path("docs/strength.jpg"))
    args = p.parse_args()
    found = rows(args.runs)
    if args.what == "fit":
        fit(found)
    elif args.what == "table":
        table(found, args.markdown)
    else:
        picture(found, args.pair, args.images, args.out)


if __name__ == "__main__":
    main()

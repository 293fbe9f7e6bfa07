"""--strength's calibration: fit it on the shared pairs, then the spread of content distance before and after.

Runs come from benchmarks/quality.py (256 px, the default's iterations), one JSON per run:

    # fixed weights (before): style weight 0.5 / 2 / 8 = strength 0.25 / 0.5 / 0.75 uncalibrated
    python benchmarks/quality.py --checkpoints 75 --pairs astronaut+starry --set style_weight=0.5 --json F.json
    # calibrated (after)
    python benchmarks/quality.py --checkpoints 75 --pairs brick+turner --set strength=0.25 --json C.json

    python benchmarks/strength.py fit out/strength/fixed_*.json          # the constants of strength.py
    python benchmarks/strength.py table out/strength/*.json --markdown   # spread before and after

`fit` regresses log content distance on log style weight and log disturbance (strength.disturbance,
measured before a run) over the shared pairs only: log d = a + b log w + c log D, so equal d needs
w proportional to D ** (-c / b): strength.EXPONENT = c / b, REFERENCE = the shared pairs' geometric mean D.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import numpy as np
import quality
from brushwork import Stylizer, images, presets, strength


def disturbances(pairs: list[str]) -> dict[str, float]:
    """strength.disturbance of each pair, as a run at 256 px measures it."""
    probe = Stylizer(presets.DEFAULT.with_(size=256))
    every = {**quality.PAIRS, **quality.HELD_OUT}
    return {name: strength.disturbance(probe, images.load(quality.SHARED / every[name][0]),
                                       [images.load(quality.SHARED / every[name][1])], [1.0]) for name in pairs}


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
    """The strength whose weight before calibration is `weight` (strength.weights with D = REFERENCE)."""
    r = (weight / strength.MIDDLE) ** (1 / strength.SLOPE)
    return r / (1 + r)


def fit(found: list[dict]) -> None:
    shared = [r for r in found if r["strength"] is None and r["pair"] in quality.PAIRS]
    d = disturbances(sorted({r["pair"] for r in shared}))
    x = np.array([[1.0, math.log(r["style_weight"]), math.log(d[r["pair"]])] for r in shared])
    y = np.log([r["content"] for r in shared])
    (a, b, c), *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ np.array([a, b, c])
    print(f"{len(shared)} runs on {len(d)} shared pairs: log d = {a:.3f} + {b:.3f} log w + {c:.3f} log D "
          f"(residual RMS {np.sqrt(np.mean(residual ** 2)):.3f})")
    print("disturbance: " + ", ".join(f"{k} {v:.4f}" for k, v in d.items()))
    print(f"EXPONENT = {c / b:.3f}\nREFERENCE = {math.exp(np.mean(np.log(list(d.values())))):.4f}")


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
        line = [f"{s:g}", f"{when} ({len(values)} pairs)", *(f"{got[p]:.3f}" if p in got else "" for p in pairs),
                *spread]
        print(("| " + " | ".join(line) + " |") if markdown else "  ".join(line))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["fit", "table"])
    p.add_argument("runs", nargs="+", type=Path, help="quality.py --json files")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    found = rows(args.runs)
    fit(found) if args.what == "fit" else table(found, args.markdown)


if __name__ == "__main__":
    main()

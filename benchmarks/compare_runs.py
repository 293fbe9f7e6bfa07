"""A markdown table of several quality.py runs side by side: one row per (pair, size, iterations, run).

    python benchmarks/compare_runs.py subtle=out/subtle.json default=out/default.json > table.md
    python benchmarks/compare_runs.py --iterations 100 ...     # only that checkpoint

Each cell is what quality.py measured (lower is better); judged images are quality.py's --out files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MEASURES = ("content", "style", "edges", "embedding")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="NAME=FILE.json")
    p.add_argument("--iterations", type=int, help="keep only this checkpoint")
    args = p.parse_args()
    rows = []
    for item in args.runs:
        name, path = item.split("=", 1)
        for r in json.loads(Path(path).read_text()):
            if args.iterations is None or r["iterations"] == args.iterations:
                rows.append((r["pair"], r.get("size", ""), r["iterations"], name, r))
    rows.sort(key=lambda row: (row[0], row[1], row[2]))  # stable: runs keep the order given
    print("| pair | size | iterations | run | " + " | ".join(MEASURES) + " | seconds |")
    print("|---|---:|---:|---|" + "---:|" * (len(MEASURES) + 1))
    for pair, size, iterations, name, r in rows:
        cells = [f"{r[m]:.3f}" if m in r else "" for m in MEASURES]
        print(f"| {pair} | {size} | {iterations} | {name} | " + " | ".join(cells) + f" | {r['seconds']:.1f} |")


if __name__ == "__main__":
    main()

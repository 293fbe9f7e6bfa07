"""One table of the bundled instant models on every shared photo, beside the optimiser's default and
neural-style's 500 iterations where they exist, and a picture grid of the models' outputs.

    python benchmarks/quality.py --size 256 --checkpoints 75 --grid all \
        vangogh_starry_night,munch_the_scream,picabia_udnie,matisse_woman_with_a_hat --json out/opt-grid.json
    python benchmarks/instant_quality.py starry scream udnie matisse --json out/instant-quality.json
    python benchmarks/instant_table.py --instant out/instant-quality.json --optimiser out/opt-grid.json

Above the table, the bundled models' recipes from their headers. Neural-style's figures are its results in benchmarks/baseline (ns_*_256.png, with the photo and painting
in the .json beside each) judged here by the same four judges. Writes --out (markdown) and --grid (JPEG:
the photos on top, then one row per model, its painting first). Lower is better on every measure.
The optimiser's grid and the bundled models' rows measured so far are kept in benchmarks/results/
(instant-optimiser-grid-256.json, instant-quality.json), so a newly bundled model needs only its own
instant_quality.py run, appended to the latter, before this script.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
MEASURES = ("content", "style", "edges", "embedding")
CELL = 160


def neural_style() -> dict[tuple[str, str], dict[str, float]]:
    """(photo, painting file) -> the four judges of neural-style's 256 px result, judged now."""
    import judges

    found = {}
    for record in sorted((HERE / "baseline").glob("ns_*_256.json")):
        run = json.loads(record.read_text())
        if run.get("iterations") != 500 or not record.with_suffix(".png").exists():
            continue
        content, style = Path(run["content"]), Path(run["style"])
        shared = HERE.parent.parent / "shared" / "images"
        found[(content.stem, style.name)] = judges.score(record.with_suffix(".png"), shared / "content" / content.name,
                                                         shared / "style" / style.name, embed=judges.available())
    return found


def cells(scores: dict | None) -> str:
    return " / ".join(f"{scores[m]:.3f}" for m in MEASURES if m in scores) if scores else "–"


def bundled_table() -> list[str]:
    """One row per bundled model: its painting and its recipe, from the model files' own headers."""
    from brushwork.feedforward.modelfile import BUNDLED_DIR, SUFFIX, read

    lines = ["| model | painting | steps | training time | file | command |", "|---|---|---:|---:|---:|---|"]
    for path in sorted(BUNDLED_DIR.glob(f"*{SUFFIX}")):
        h = read(path)[0]
        lines.append(f"| `{path.stem}` | {h['styles'][0]['name']} | {h['training']['steps_done']} | "
                     f"{h['recipe']['minutes']:g} min | {path.stat().st_size / 1e6:.2f} MB | `{h['recipe']['command']}` |")
    return lines


def picture_grid(models: dict[str, str], photos: list[str], keep: Path, out: Path) -> None:
    from brushwork import images

    shared = HERE.parent.parent / "shared" / "images"
    rows = [[images.load(next((shared / "content").glob(f"{p}.*"))) for p in photos]]
    rows += [[images.load(shared / "style" / painting), *(images.load(keep / f"{m}_{p}_256.png") for p in photos)]
             for m, painting in models.items()]
    sheet = Image.new("RGB", ((len(photos) + 1) * CELL, len(rows) * CELL), "white")
    for r, row in enumerate(rows):
        for c, img in enumerate(row, start=0 if r else 1):
            img = images.fit(img, CELL)
            sheet.paste(img, (c * CELL + (CELL - img.width) // 2, r * CELL + (CELL - img.height) // 2))
    sheet.save(out, quality=88)


def main() -> None:
    from brushwork.feedforward.modelfile import load_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instant", type=Path, required=True, help="instant_quality.py's --json")
    p.add_argument("--optimiser", type=Path, required=True, help="quality.py --grid's --json")
    p.add_argument("--keep", type=Path, default=HERE.parent / "out" / "instant-quality",
                   help="instant_quality.py's --keep folder (the outputs for the grid)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "instant-bundled.md")
    p.add_argument("--grid", type=Path, default=HERE / "results" / "instant-bundled.jpg")
    args = p.parse_args()

    instant = {(Path(r["model"]).stem, r["photo"], r["size"]): r for r in json.loads(args.instant.read_text())}
    optimiser = {tuple(r["pair"].split("+")): r for r in json.loads(args.optimiser.read_text())}
    models = {m: load_model(m).header["styles"][0]["name"] for m in dict.fromkeys(k[0] for k in instant)}
    photos = sorted(dict.fromkeys(k[1] for k in instant))
    ns = neural_style()
    lines = ["| model | photo | instant 256 px | instant 512 px | optimiser default 256 px (s) | neural-style 500 it. 256 px |",
             "|---|---|---|---|---|---|"]
    for model, painting in models.items():
        for photo in photos:
            opt = optimiser.get((photo, Path(painting).stem))
            seconds = f" ({opt['seconds']:.0f})" if opt else ""
            lines.append(f"| {model} | {photo} | {cells(instant.get((model, photo, 256)))} | "
                         f"{cells(instant.get((model, photo, 512)))} | {cells(opt)}{seconds} | "
                         f"{cells(ns.get((photo, painting)))} |")
    lines = [*bundled_table(), "", *lines]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    picture_grid(models, photos, args.keep, args.grid)
    print(args.grid)


if __name__ == "__main__":
    main()

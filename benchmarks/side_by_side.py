"""The README's picture: photo | painting | neural-style 500 it | subtle preset | default, a row per pair.

    python benchmarks/side_by_side.py --size 256 -o docs/side_by_side.jpg
    python benchmarks/side_by_side.py --pyramid 0.5:50 -o benchmarks/results/pyramid.jpg   # subtle | pyramid

neural-style's results come from benchmarks/baseline/ (ns_<pair>_<size>.png, made by ns_baseline.py); a pair without one gets no such cell. Every result is scored by all four judges
(benchmarks/judges.py: content, Gram style, edges, embedding; lower is better); the figures are printed
and saved next to the picture as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

import judges
from brushwork import Stylizer, images, presets

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "images"
PAIRS = [("content/astronaut.png", "style/vangogh_starry_night.jpg", "astronaut_starry"),
         ("content/chelsea.png", "style/munch_the_scream.jpg", "chelsea_scream"),
         ("content/rocket.jpg", "style/kandinsky_composition_vii.jpg", "rocket_kandinsky")]
CAPTION = 48  # pixels under each cell for its name and scores (three lines)


def tile(img: Image.Image, cell: int, lines: list[str]) -> Image.Image:
    """Fit `img` in a cell x cell square on white, with a caption."""
    out = Image.new("RGB", (cell, cell + CAPTION), "white")
    small = img.copy()
    small.thumbnail((cell, cell), Image.LANCZOS)
    out.paste(small, ((cell - small.width) // 2, (cell - small.height) // 2))
    ImageDraw.Draw(out).multiline_text((4, cell + 3), "\n".join(lines), fill="black", spacing=2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, default=Path("docs/side_by_side.jpg"))
    p.add_argument("--pyramid", metavar="FRACTION:ITERATIONS",
                   help="compare the subtle preset with it plus a one-level pyramid instead of with the default")
    args = p.parse_args()

    subtle = presets.get("subtle").with_(size=args.size)
    if args.pyramid:
        fraction, iterations = args.pyramid.split(":")
        other = ("pyramid", subtle.with_(pyramid=(float(fraction),), pyramid_iterations=(int(iterations),)))
    else:
        other = ("default", presets.DEFAULT.with_(size=args.size))
    engines = {"subtle": Stylizer(subtle), other[0]: Stylizer(other[1])}
    embed = judges.available()
    rows, scores = [], []

    def cell(name: str, image: Image.Image, content: str, style: str, extra: dict) -> Image.Image:
        s = judges.score(image, SHARED / content, SHARED / style, embed=embed)
        scores.append({"content_image": content, "style_image": style, "method": name, "size": args.size,
                       **extra, **{k: round(v, 4) for k, v in s.items()}})
        print(json.dumps(scores[-1]), flush=True)
        emb = f" emb {s['embedding']:.3f}" if embed else ""
        return tile(image, args.size, [name, f"c {s['content']:.3f} s {s['style']:.3f}",
                                       f"edges {s['edges']:.3f}{emb}"])

    for content, style, key in PAIRS:
        cells = [tile(images.load(SHARED / content), args.size, ["photo", Path(content).stem]),
                 tile(images.load(SHARED / style), args.size, ["painting", Path(style).stem])]
        ns = HERE / "baseline" / f"ns_{key}_{args.size}.png"
        if ns.exists():
            cells.append(cell("neural-style 500 it", images.load(ns), content, style, {"file": ns.name}))
        for name, engine in engines.items():
            result = engine.run(SHARED / content, SHARED / style, seed=args.seed)
            cells.append(cell(name, result.image, content, style,
                              {"iterations": result.iterations, "seconds": round(result.seconds, 1)}))
        row = Image.new("RGB", (sum(c.width for c in cells), cells[0].height), "white")
        for i, c in enumerate(cells):
            row.paste(c, (i * args.size, 0))
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    for i, r in enumerate(rows):
        sheet.paste(r, (0, i * r.height))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    images.save(sheet, args.output)
    args.output.with_suffix(".json").write_text(json.dumps(scores, indent=1))
    print(args.output)


if __name__ == "__main__":
    main()

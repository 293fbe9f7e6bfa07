"""The README's picture: content | style | brushwork default | seed preset (or a pyramid), a row per pair.

    python benchmarks/side_by_side.py --size 256 -o docs/side_by_side.jpg
    python benchmarks/side_by_side.py --pyramid 0.5:50 -o benchmarks/results/pyramid.jpg   # default | pyramid

Each result is also scored with `brushwork evaluate`; the figures are printed and saved next to the
picture as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

from brushwork import Stylizer, distances, images, presets

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"
PAIRS = [("content/astronaut.png", "style/vangogh_starry_night.jpg"),
         ("content/chelsea.png", "style/munch_the_scream.jpg"),
         ("content/rocket.jpg", "style/kandinsky_composition_vii.jpg")]


def tile(img: Image.Image, cell: int, label: str) -> Image.Image:
    """Fit `img` in a cell x cell square on white, with a caption."""
    out = Image.new("RGB", (cell, cell + 18), "white")
    small = img.copy()
    small.thumbnail((cell, cell), Image.LANCZOS)
    out.paste(small, ((cell - small.width) // 2, (cell - small.height) // 2))
    ImageDraw.Draw(out).text((4, cell + 3), label, fill="black")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, default=Path("docs/side_by_side.jpg"))
    p.add_argument("--pyramid", metavar="FRACTION:ITERATIONS",
                   help="compare the default with a one-level pyramid instead of with the seed preset")
    args = p.parse_args()

    default = presets.DEFAULT.with_(size=args.size)
    if args.pyramid:
        fraction, iterations = args.pyramid.split(":")
        other = ("pyramid", default.with_(pyramid=(float(fraction),), pyramid_iterations=(int(iterations),)))
    else:
        other = ("seed", presets.SEED.with_(size=args.size))
    engines = {"default": Stylizer(default), other[0]: Stylizer(other[1])}
    rows, scores = [], []
    for content, style in PAIRS:
        cells = [tile(images.load(SHARED / content), args.size, Path(content).stem),
                 tile(images.load(SHARED / style), args.size, Path(style).stem)]
        for name, engine in engines.items():
            result = engine.run(SHARED / content, SHARED / style, seed=args.seed)
            d = distances(result.image, SHARED / content, SHARED / style)
            scores.append({"content_image": content, "style_image": style, "preset": name, "size": args.size,
                           "iterations": result.iterations, "seconds": round(result.seconds, 1),
                           "content": round(d.content, 4), "style": round(d.style, 4)})
            print(json.dumps(scores[-1]), flush=True)
            cells.append(tile(result.image, args.size, f"{name}: c {d.content:.3f} s {d.style:.3f}"))
        row = Image.new("RGB", (sum(c.width for c in cells), cells[0].height), "white")
        for i, c in enumerate(cells):
            row.paste(c, (i * args.size, 0))
        rows.append(row)
    sheet = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)), "white")
    for i, r in enumerate(rows):
        sheet.paste(r, (0, i * r.height))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    images.save(sheet, args.output)
    args.output.with_suffix(".json").write_text(json.dumps(scores, indent=1))
    print(args.output)


if __name__ == "__main__":
    main()

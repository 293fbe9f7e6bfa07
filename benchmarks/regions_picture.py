"""The README's regions picture: the astronaut with The Scream on her and The Starry Night behind her,
then the same with her face kept close to the photo (`--keep-mask`).

    python benchmarks/regions_picture.py -o docs/regions.jpg      # 256 px, default preset: two runs

The masks are drawn here by hand (a head, a suit and a helmet as shapes, blurred into soft edges) and
saved beside the picture, so the run can be repeated with the CLI:
    brushwork stylize astronaut.png --style munch_the_scream.jpg vangogh_starry_night.jpg \\
        --mask person.png background.png --keep-mask face.png --size 256
It prints, for each run, the mean squared pixel difference from the photo on the face and elsewhere.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from brushwork import Stylizer, images, presets

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "images"
PHOTO, PERSON_STYLE, BACK_STYLE = (SHARED / "content/astronaut.png", SHARED / "style/munch_the_scream.jpg",
                                   SHARED / "style/vangogh_starry_night.jpg")


def masks(size: tuple[int, int]) -> dict[str, Image.Image]:
    """Person, background and face masks for the 512 px astronaut, soft-edged (a 6 px blur)."""
    person = Image.new("L", size, 0)
    d = ImageDraw.Draw(person)
    d.ellipse((150, 10, 302, 190), fill=255)  # head and hair
    d.polygon([(115, 180), (320, 180), (372, 300), (380, 512), (10, 512), (18, 330), (60, 250)], fill=255)  # suit
    d.ellipse((272, 338, 505, 560), fill=255)  # helmet
    face = Image.new("L", size, 0)
    ImageDraw.Draw(face).ellipse((168, 40, 284, 170), fill=255)
    soft = ImageFilter.GaussianBlur(6)
    person = person.filter(soft)
    return {"person": person, "background": ImageChops.invert(person), "face": face.filter(soft)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", type=Path, default=HERE.parent / "docs" / "regions.jpg")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, help="full-size iterations (default: the preset's)")
    args = ap.parse_args()
    photo = images.load(PHOTO)
    drawn = masks(photo.size)
    folder = args.output.parent / "regions-masks"
    folder.mkdir(exist_ok=True)
    for name, mask in drawn.items():
        mask.save(folder / f"{name}.png")
    stylizer = Stylizer(presets.DEFAULT.with_(size=args.size, iterations=args.iterations))
    styles = [PERSON_STYLE, BACK_STYLE]
    region_masks = [drawn["person"], drawn["background"]]
    runs = {"regions": stylizer.run(PHOTO, styles, masks=region_masks, seed=0),
            "regions + keep face": stylizer.run(PHOTO, styles, masks=region_masks, keep_mask=drawn["face"], seed=0)}
    small = images.fit(photo, args.size)
    face = np.asarray(images.fit(drawn["face"].convert("RGB"), args.size), dtype=np.float32)[..., 0] / 255 > 0.5
    figures = {}
    for name, result in runs.items():
        sq = ((np.asarray(result.image, dtype=np.float32) - np.asarray(small, dtype=np.float32)) ** 2).mean(-1)
        figures[name] = {"face": round(float(sq[face].mean()), 1), "elsewhere": round(float(sq[~face].mean()), 1),
                         "seconds": round(result.seconds, 1)}
        print(name, figures[name])
    cells = [small, images.fit(drawn["person"].convert("RGB"), args.size), images.fit(images.load(PERSON_STYLE), args.size),
             images.fit(images.load(BACK_STYLE), args.size), *(r.image for r in runs.values())]
    sheet = Image.new("RGB", (sum(c.width for c in cells) + 4 * (len(cells) - 1), max(c.height for c in cells)), "white")
    x = 0
    for c in cells:
        sheet.paste(c, (x, 0))
        x += c.width + 4
    sheet.save(args.output, quality=90)
    args.output.with_suffix(".json").write_text(json.dumps(figures, indent=1) + "\n")
    print(args.output)


if __name__ == "__main__":
    main()

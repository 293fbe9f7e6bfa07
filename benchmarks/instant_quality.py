"""Quality of trained networks on photos never trained on: the four judges (benchmarks/judges.py) of each
model's output, at each size, beside neural-style's and the optimiser's figures where the README has them.

    python benchmarks/instant_quality.py out/a.safetensors out/b.safetensors --photos astronaut chelsea \
        --sizes 256 512 --json benchmarks/results/instant-quality.json

The painting is the one in each model's header (found under ../shared/images/style by name), unless
--style names another. Outputs are written under --keep (default: out/instant-quality) to be looked at.
One row per model, photo and size: content / style / edges / embedding, lower is better on all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))
SHARED = ROOT.parent / "shared" / "images"
PHOTOS = {p.stem: p for p in sorted((SHARED / "content").iterdir())} if (SHARED / "content").is_dir() else {}


def main() -> None:
    import torch

    import judges
    from brushwork.feedforward.infer import InstantStylizer

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="model files or names")
    p.add_argument("--photos", nargs="+", default=sorted(PHOTOS), help=f"shared photos by name ({', '.join(PHOTOS)})")
    p.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    p.add_argument("--style", type=Path, help="judge against this painting instead of the model's own")
    p.add_argument("--keep", type=Path, default=ROOT / "out" / "instant-quality")
    p.add_argument("--json", type=Path, help="append the rows to this JSON list")
    args = p.parse_args()
    torch.set_num_threads(1)
    args.keep.mkdir(parents=True, exist_ok=True)
    embed = judges.available()
    rows = []
    for model in args.models:
        paint = InstantStylizer(model)
        style = args.style or SHARED / "style" / paint.model.header["styles"][0]["name"]
        for photo in args.photos:
            for size in args.sizes:
                out = args.keep / f"{paint.model.name}_{photo}_{size}.png"
                paint(PHOTOS[photo], size).save(out)
                row = {"model": str(model), "photo": photo, "size": size,
                       **{k: round(v, 3) for k, v in judges.score(out, PHOTOS[photo], style, embed=embed).items()}}
                print(" | ".join(str(v) for v in row.values()), flush=True)
                rows.append(row)
    if args.json:
        old = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps(old + rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Quality benchmark: four judges of the result at iteration checkpoints.

    python benchmarks/quality.py --size 256 --checkpoints 50,100,200 --precision bfloat16
    python benchmarks/quality.py --pairs held-out --checkpoints 100
    python benchmarks/quality.py --set style_weight=3 --set pyramid=0.5 --set pyramid_iterations=50
    python benchmarks/quality.py --checkpoints 75 --grid astronaut,chelsea vangogh_starry_night,munch_the_scream

content and style are `brushwork evaluate`'s distances, which the presets minimise; edges and embedding
(benchmarks/judges.py) are optimised by no brushwork loss. The embedding judge needs
`bash benchmarks/judge_env.sh` once; without it its column is left out. Lower is better on all four.
Prints one row per (pair, checkpoint) and writes the images to --out.
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

import judges
from brushwork import Stylizer, images, presets

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"
PAIRS = {
    "astronaut+starry": ("content/astronaut.png", "style/vangogh_starry_night.jpg"),
    "chelsea+scream": ("content/chelsea.png", "style/munch_the_scream.jpg"),
    "rocket+kandinsky": ("content/rocket.jpg", "style/kandinsky_composition_vii.jpg"),
}
# Never tuned on: a check that a change helps in general, not just on the three pairs above.
HELD_OUT = {
    "brick+turner": ("content/brick.png", "style/turner_shipwreck.jpg"),
    "retina+matisse": ("content/retina.jpg", "style/matisse_woman_with_a_hat.jpg"),
    "clock+picabia": ("content/clock_motion.png", "style/picabia_udnie.jpg"),
    "chelsea+monet": ("content/chelsea.png", "style/monet_cliff_walk_at_pourville.jpg"),
}


def parse_set(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, value = item.split("=", 1)
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        if key in ("pyramid", "pyramid_iterations", "content_layers", "style_layers"):
            parsed = tuple(parsed) if isinstance(parsed, (list, tuple)) else (parsed,)
        out[key] = parsed
    return out


def grid(photos: str, paintings: str) -> dict[str, tuple[str, str]]:
    """Pairs named photo+painting for every shared photo and painting listed (stems, or 'all')."""
    def pick(folder: str, stems: str) -> list[str]:
        found = {p.stem: f"{folder}/{p.name}" for p in sorted((SHARED / folder).iterdir())}
        return list(found.values()) if stems == "all" else [found[s] for s in stems.split(",")]
    return {f"{Path(c).stem}+{Path(s).stem}": (c, s) for c in pick("content", photos)
            for s in pick("style", paintings)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="default")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--checkpoints", default="100,200")
    p.add_argument("--pairs", default=",".join(PAIRS), help=f"comma-separated, or 'held-out'; any of "
                   f"{', '.join([*PAIRS, *HELD_OUT])}")
    p.add_argument("--grid", nargs=2, metavar=("PHOTOS", "PAINTINGS"), help="instead of --pairs: every "
                   "shared photo with every shared painting, each list comma-separated file stems or 'all'")
    p.add_argument("--precision", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a Config field")
    p.add_argument("--out", type=Path, default=Path("out/quality"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    checkpoints = sorted(int(c) for c in args.checkpoints.split(","))
    config = presets.get(args.preset).with_(size=args.size, iterations=checkpoints[-1],
                                            precision=args.precision, **parse_set(args.set))
    args.out.mkdir(parents=True, exist_ok=True)
    stylizer = Stylizer(config, device=args.device)
    embed = judges.available()
    if not embed:
        print("quality: no embedding judge (run: bash benchmarks/judge_env.sh); scoring without it")
    measures = ["content", "style", "edges", *(["embedding"] if embed else [])]
    rows = []
    print(f"{'pair':18} {'iters':>5} " + " ".join(f"{m:>9}" for m in measures) + f" {'seconds':>8}")
    every = {**PAIRS, **HELD_OUT, **(grid(*args.grid) if args.grid else {})}
    names = list(grid(*args.grid)) if args.grid else list(HELD_OUT) if args.pairs == "held-out" \
        else args.pairs.split(",")
    for name in names:
        content, style = (SHARED / p for p in every[name])
        snaps: dict[int, tuple[object, float]] = {}
        start = time.perf_counter()

        def keep(step) -> None:
            done_at_full = step.iteration - (step.total - config.iterations)  # after any pyramid levels
            if done_at_full in checkpoints:
                snaps[done_at_full] = (step.image.clone(), time.perf_counter() - start)

        stylizer.run(content, style, callback=keep, seed=args.seed)
        for n in checkpoints:
            image, seconds = snaps[n]
            path = args.out / f"{name}_{args.size}_{n}.png"
            images.save(image, path)
            scores = judges.score(path, content, style, embed=embed)
            rows.append({"pair": name, "size": args.size, "iterations": n, **scores, "seconds": seconds,
                         "config": {k: str(v) for k, v in vars(config).items()}})
            print(f"{name:18} {n:5d} " + " ".join(f"{scores[m]:9.3f}" for m in measures) + f" {seconds:8.1f}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

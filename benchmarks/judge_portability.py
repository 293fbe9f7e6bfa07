"""Is the embedding judge the same on every CPU? Its model is quantised, and onnxruntime's fused int8 kernels
differ from CPU to CPU; `judges.py` runs it unfused. This scores neural-style's 500-iteration pictures
(`baseline/ns_<photo>_<painting>_256.png`) both ways on this machine, beside the scores `results/painterly.md`
section 13 recorded for them (an Intel Xeon with AMX, fused), and prints a markdown table.

    BRUSHWORK_JUDGE_CACHE=benchmarks/.cache python benchmarks/judge_portability.py
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import onnxruntime

import judges

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "images"
PHOTOS = {"astronaut": "astronaut.png", "chelsea": "chelsea.png", "rocket": "rocket.jpg", "brick": "brick.png",
          "retina": "retina.jpg", "clock": "clock_motion.png"}
# a name in the table -> (the painting's file, its short name in baseline/)
PAINTINGS = {"Starry Night": ("vangogh_starry_night.jpg", "starry"), "The Scream": ("munch_the_scream.jpg", "scream"),
             "Kandinsky VII": ("kandinsky_composition_vii.jpg", "kandinsky"), "Turner": ("turner_shipwreck.jpg", "turner"),
             "Matisse": ("matisse_woman_with_a_hat.jpg", "matisse"), "Udnie": ("picabia_udnie.jpg", "picabia"),
             "Monet": ("monet_cliff_walk_at_pourville.jpg", "monet")}
ROW = re.compile(r"\| (\w+) \+ ([^|]+?) \| [\d.]+ / [\d.]+ / [\d.]+ / ([\d.]+) \|")


def recorded() -> list[tuple[str, str, float]]:
    """(photo, painting's table name, neural-style's recorded embedding score) from section 13's two tables."""
    section = (HERE / "results/painterly.md").read_text().split("## 13.")[1].split("\n## ")[0]
    rows = []
    for m in map(ROW.match, section.splitlines()):
        if m:
            name = next(k for k in PAINTINGS if k in m.group(2))
            rows.append((m.group(1), name, float(m.group(3))))
    return rows


def session(level: onnxruntime.GraphOptimizationLevel) -> onnxruntime.InferenceSession:
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = level
    return onnxruntime.InferenceSession(str(judges.MODEL), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    ways = {"fused int8 here": session(onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL),
            "unfused (the judge)": session(onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC)}
    print("| neural-style 500 it., 256 px | recorded (Xeon, fused) | " + " | ".join(ways) + " |")
    print("|---|---:|" + "---:|" * len(ways))
    off: dict[str, list[float]] = {way: [] for way in ways}
    for photo, name, was in recorded():
        painting, short = PAINTINGS[name]
        picture = HERE / f"baseline/ns_{photo}_{short}_256.png"
        scores = []
        for way, s in ways.items():
            judges._session = lambda s=s: s  # the judge's own session, replaced
            scores.append(judges.embedding_score(picture, SHARED / "content" / PHOTOS[photo], SHARED / "style" / painting))
            off[way].append(abs(scores[-1] - was))
        print(f"| {photo} + {name} | {was:.3f} | " + " | ".join(f"{x:.3f}" for x in scores) + " |")
    print("\n" + "; ".join(f"{way}: {len(d)} pictures, off the recorded score by {statistics.mean(d):.3f} on average, "
                           f"{max(d):.3f} at most" for way, d in off.items()))


if __name__ == "__main__":
    main()

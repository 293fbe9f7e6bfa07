"""Temporal consistency of instant-style video: the temporal step against the same model frame by frame.

    python benchmarks/instant_video.py --model out/train/starry.safetensors --frames 24 --size 256

Stylises the first --frames frames of the shared clip with each --temporal blend (0 = frame by frame)
and prints the warping error of video_consistency.py (Lai et al. 2018: mean |O_t - warp(O_t-1)| over
pixels the input's flow trusts, 0-255 levels) with DIS and, as a check that the blend is not just
fitting its own flow, Farneback's; plus the mean content and style distances (`brushwork evaluate`) of
the frames against the model's painting, so consistency bought with blur shows. Writes --json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from video_consistency import DEFAULT_VIDEO, warping_errors  # noqa: E402  (beside this script)

from brushwork import video  # noqa: E402
from brushwork.evaluate import distances  # noqa: E402
from brushwork.feedforward.infer import InstantStylizer, stylize_frames  # noqa: E402
from PIL import Image  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--style", required=True, help="the model's painting, for the style distance")
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--temporal", default="0,0.6,0.8", help="blends to compare, comma-separated")
    p.add_argument("--flow", default="dis-fast")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    info = video.probe(a.video)
    inputs = [f for _, f in zip(range(a.frames), video.read_frames(info, video.frame_size(info, a.size)))]
    paint = InstantStylizer(a.model)
    report = {"command": "python benchmarks/instant_video.py " + " ".join(sys.argv[1:]), "runs": []}
    for blend in (float(t) for t in a.temporal.split(",")):
        outs = [o.round().clip(0, 255) for o, _ in stylize_frames(paint, inputs, blend, a.flow)]
        d = [distances(Image.fromarray(o.astype("uint8")), Image.fromarray(f), a.style)
             for o, f in zip(outs[::4], inputs[::4])]
        run = {"temporal": blend,
               "warping_error_dis": statistics.mean(warping_errors(inputs, outs, "dis")),
               "warping_error_farneback": statistics.mean(warping_errors(inputs, outs, "farneback")),
               "content": statistics.mean(x.content for x in d), "style": statistics.mean(x.style for x in d)}
        report["runs"].append(run)
        print(run, flush=True)
    base = report["runs"][0]["warping_error_dis"]
    for run in report["runs"]:
        run["relative_to_first"] = run["warping_error_dis"] / base
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Temporal consistency of instant-style video: the temporal step against the same model frame by frame.

    python benchmarks/instant_video.py --model starry --style ../shared/images/style/vangogh_starry_night.jpg \
        --frames 24 --size 256 --json benchmarks/results/instant-video.json

Stylises the first --frames frames of the shared clip with each --temporal blend (0 = frame by frame),
keeps them as PNGs under --work, and reports the warping error (Lai et al. 2018: mean |O_t - warp(O_t-1)|
over pixels the flow trusts, 0-255 levels) under video_consistency.py's independent judge (DeepFlow on
the full-resolution input, benchmarks/flow_judge.py in its own venv) and Farneback's, as a check that the
blend is not just fitting the DIS flow it uses; the warping error under DIS flow between the output-size
frames as a diagnostic (the step itself takes its flow from frames up to infer.FLOW_SIDE px, so this reads
higher than the step's own flow would);
and the mean content and style distances (`brushwork evaluate`) of every 4th frame against the painting,
so consistency bought with blur shows. Writes --json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from video_consistency import DEFAULT_VIDEO, JUDGES, judge, own_flow_errors  # noqa: E402  (beside this script)

from brushwork import images, video  # noqa: E402
from brushwork.evaluate import distances  # noqa: E402
from brushwork.feedforward.infer import InstantStylizer, flow_dims, stylize_pairs  # noqa: E402
from PIL import Image  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--style", required=True, help="the model's painting, for the style distance")
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--temporal", default="0,0.6,0.8", help="blends to compare, comma-separated")
    p.add_argument("--flow", default=video.FLOW, choices=video.FLOW_METHODS)
    p.add_argument("--judge-python", type=Path, default=HERE.parent / ".judge-venv" / "bin" / "python")
    p.add_argument("--judge-cache", type=Path, default=HERE.parent / "out" / "judge-cache")
    p.add_argument("--work", type=Path, default=HERE.parent / "out" / "instant-video", help="frames kept here")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    info = video.probe(a.video)
    dims = video.frame_size(info, a.size)
    # as `brushwork video`: each frame with the same frame for the step's flow (up to FLOW_SIDE px)
    reader = video.with_flow_frames(info, dims, flow_dims(info, dims))
    pairs = list(itertools.islice(reader, a.frames))
    reader.close()
    inputs = [f for f, _ in pairs]
    paint = InstantStylizer(a.model)
    a.truth = None  # video_consistency.judge's third judge: exact flows of a synthetic clip, not this clip
    report = {"command": "python benchmarks/instant_video.py " + " ".join(sys.argv[1:]), "runs": []}
    folders = {}
    for blend in (float(t) for t in a.temporal.split(",")):
        outs = [o.round().clip(0, 255).astype("uint8") for o, _ in stylize_pairs(paint, pairs, blend, a.flow)]
        folders[blend] = a.work / f"{paint.model.name}-{a.size}-blend{blend}"
        folders[blend].mkdir(parents=True, exist_ok=True)
        for i, o in enumerate(outs):
            images.save(Image.fromarray(o), folders[blend] / f"{i:06d}.png")
        d = [distances(Image.fromarray(o), Image.fromarray(f), a.style) for o, f in zip(outs[::4], inputs[::4])]
        report["runs"].append({"temporal": blend, "own_flow": statistics.mean(own_flow_errors(inputs, outs)),
                               "content": statistics.mean(x.content for x in d),
                               "style": statistics.mean(x.style for x in d)})
    verdicts = {m: judge(a, list(folders.values()), m) for m in JUDGES}
    for run, folder in zip(report["runs"], folders.values()):
        run.update({m: v["outputs"][str(folder)] for m, v in verdicts.items()})
    for run in report["runs"]:
        for m in (*JUDGES, "own_flow"):
            run[f"{m}_ratio"] = run[m] / report["runs"][0][m]
        print({k: round(v, 3) for k, v in run.items()}, flush=True)
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

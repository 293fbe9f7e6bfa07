#!/usr/bin/env python3
"""Turn a finished `brushwork train` run into a bundled model: src/brushwork/assets/models/NAME.safetensors.

    python scripts/bundle_model.py out/train-runs/starry/starry.safetensors --name starry --minutes 26 \
        --command "brushwork train vangogh_starry_night.jpg --photos photos/ -o starry.safetensors"

The weights come from the run's float32 checkpoint (RUN.training/checkpoint.pt) when it holds the same
step as the model file, else from the model file itself; they are stored float16 with the run's header
kept as it is, plus a "recipe" record (the command and the minutes it took), so `brushwork models list`
and the README can say how each bundled model was made. The script then measures what float16 storage
changes: the float32 network's output against the bundled file's at 512 px on the shared photos
(mean and largest difference in 0-255 levels, and the content / style distances of both).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from brushwork import distances, images  # noqa: E402
from brushwork.feedforward import modelfile  # noqa: E402
from brushwork.feedforward.infer import stylize_tensor  # noqa: E402
from brushwork.feedforward.train import CHECKPOINT, work_folder  # noqa: E402

LIMIT = 4 * 1024 * 1024  # bytes a bundled model may take (issue #9)
SHARED = ROOT.parent / "shared" / "images"


def float32_net(run: Path, model: modelfile.Model) -> torch.nn.Module:
    """The run's network at full precision: the checkpoint's weights if they are of the model's step."""
    checkpoint = work_folder(run) / CHECKPOINT
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state["step"] == model.header["training"].get("steps_done"):
            net = type(model.net)(model.net.config)
            net.load_state_dict(state["net"])
            return net.eval().requires_grad_(False)
        print(f"{checkpoint}: step {state['step']}, not the model's; using the model file's float16 weights")
    return model.net


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="the model file a `brushwork train` run wrote")
    p.add_argument("--name", required=True, help="the bundled model's name (--model NAME)")
    p.add_argument("--command", required=True, help="the training command, as a user would type it")
    p.add_argument("--minutes", type=float, required=True, help="how long the training took")
    p.add_argument("--photos", nargs="+", default=["astronaut", "chelsea"], help="shared photos to compare on")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--out", type=Path, default=modelfile.BUNDLED_DIR)
    args = p.parse_args()

    model = modelfile.load_model(args.run)
    net = float32_net(args.run, model)
    args.out.mkdir(parents=True, exist_ok=True)
    header = model.header
    recipe = {"command": args.command, "minutes": args.minutes}
    path = modelfile.save_model(net, args.out / f"{args.name}{modelfile.SUFFIX}", styles=header["styles"],
                                training=header["training"], recipe=recipe)
    bundled = modelfile.load_model(path)
    kept = {k: v for k, v in bundled.header.items() if k not in ("recipe", "brushwork")}
    if kept != {k: v for k, v in header.items() if k not in ("recipe", "brushwork")}:
        raise SystemExit(f"{path}: its header differs from {args.run}'s beyond the recipe; not bundled as is")
    size = path.stat().st_size
    print(f"{path}: {size / 1e6:.2f} MB, {bundled.header['arch']} width {header['config']['width']}, "
          f"{header['training'].get('steps_done')} steps, style {header['styles'][0]['name']}")
    if size > LIMIT:
        raise SystemExit(f"{path}: {size} bytes is over the {LIMIT} allowed for a bundled model")

    painting = SHARED / "style" / header["styles"][0]["name"]
    for photo in args.photos:
        source = next((SHARED / "content").glob(f"{photo}.*"))
        x = images.to_tensor(images.fit(images.load(source), args.size))
        full, half = (images.to_image(stylize_tensor(n, x)) for n in (net, bundled.net))
        diff = (images.to_tensor(full) - images.to_tensor(half)).abs()
        (c32, s32), (c16, s16) = ((d.content, d.style) for d in (distances(o, source, painting) for o in (full, half)))
        print(f"{photo} {args.size} px, float32 weights vs float16 file: mean |diff| {diff.mean():.3f} levels, "
              f"max {diff.max():.0f}; content / style {c32:.4f} / {s32:.4f} vs {c16:.4f} / {s16:.4f}")


if __name__ == "__main__":
    main()

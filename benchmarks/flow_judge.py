"""An independent judge of video flicker: warping error under flow the method never saw.

brushwork.video fits its temporal loss to OpenCV DIS flow computed at the run's size, so a warping error
measured with that flow partly measures the method against its own target. This judge shares nothing
with it: it reads the input video itself (OpenCV's decoder), computes DeepFlow (Weinzaepfel et al. 2013,
opencv-contrib's variational method, not DIS's patch search) on the FULL-resolution grey input frames,
keeps the pixels that pass its own forward-backward consistency check (Sundaram et al. 2010) and whose
source lies inside the frame, resizes every stylised frame up to the input's resolution (bicubic), and
reports the warping error of Lai et al. 2018: the mean |O_t(x) - O_t-1(x + f(x))| over those pixels, in
0-255 levels, averaged over RGB and over consecutive pairs.

DeepFlow needs opencv-contrib, which cannot share an environment with the opencv-python-headless that
brushwork uses, so this script imports nothing from brushwork and runs in its own venv:

    python -m venv .judge-venv && .judge-venv/bin/pip install numpy opencv-contrib-python-headless
    .judge-venv/bin/python benchmarks/flow_judge.py clip.mp4 --frames 20 run1.frames/ run2.frames/

Flows take about 4 s a frame pair each way at 1280x720 on one core; they depend only on the input, so
they are cached (`--cache`, default out/judge-cache) and every later judgement of the clip is quick.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np

FRAME_EXTENSIONS = {".png", ".jpg", ".jpeg"}


def input_frames(video: Path, count: int) -> list[np.ndarray]:
    """The first `count` frames of a video file (or folder of images) as full-resolution RGB arrays."""
    if video.is_dir():
        files = sorted(p for p in video.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS)[:count]
        return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in files]
    cap = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        sys.exit(f"{video}: no frames could be decoded")
    return frames


def output_frames(folder: Path, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """The first `count` stylised frames of a folder, resized up to (width, height) bicubically."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS)[:count]
    if len(files) < 2:
        sys.exit(f"{folder}: needs at least two frames, found {len(files)}")
    return [cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), size,
                       interpolation=cv2.INTER_CUBIC) for p in files]


def judge_flow(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """Flow f with a(x) ~ b(x + f(x)), on grey versions of two RGB frames.

    "deepflow": the judge. "farneback": OpenCV's polynomial-expansion flow with the settings of
    brushwork's README judge, here at full resolution (the issue's second judge; its flow is much less
    accurate on this footage, see the input frames' own warping error).
    """
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (a, b)]
    if method == "deepflow":
        return cv2.optflow.createOptFlow_DeepFlow().calc(grey[0], grey[1], None)
    return cv2.calcOpticalFlowFarneback(grey[0], grey[1], None, pyr_scale=0.5, levels=5, winsize=15,
                                        iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def sample(image: np.ndarray, f: np.ndarray) -> np.ndarray:
    """image(x + f(x)), bilinear."""
    h, w = f.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + f[..., 0], gy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def reliable(back: np.ndarray, fore: np.ndarray) -> np.ndarray:
    """Pixels of frame t whose flow back to t-1 is trusted: the forward flow at the point reached leads
    back to where it started (within 0.01 of the squared lengths + 0.5 px^2), and that point is inside."""
    h, w = back.shape[:2]
    fore_there = sample(fore, back)
    ok = ((back + fore_there) ** 2).sum(-1) <= 0.01 * ((back ** 2).sum(-1) + (fore_there ** 2).sum(-1)) + 0.5
    gx, gy = np.meshgrid(np.arange(w), np.arange(h))
    tx, ty = gx + back[..., 0], gy + back[..., 1]
    return ok & (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)


def judge_flows(video: Path, frames: list[np.ndarray], cache: Path, method: str = "deepflow",
                truth: Path | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per consecutive pair (t-1, t): the flow from t back to t-1 and the mask of trusted pixels.

    Cached per clip (its bytes' hash) and pair, so only the first judgement of a clip pays for them.
    With `truth` (a synthetic clip's exact flows, from make_pan_clip.py --truth) those are used instead.
    """
    if truth is not None:
        exact = np.load(truth)
        return [(back, reliable(back, fore)) for back, fore in zip(exact["back"], exact["fore"])][:len(frames) - 1]
    key = hashlib.blake2b(video.read_bytes() if video.is_file() else str(video.resolve()).encode(),
                          digest_size=8).hexdigest()
    folder = cache / f"{video.stem}-{key}-{method}"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for t in range(1, len(frames)):
        file = folder / f"{t:05d}.npz"
        if file.is_file():
            data = np.load(file)
            back, mask = data["back"].astype(np.float32), data["mask"]
        else:
            back = judge_flow(frames[t], frames[t - 1], method)
            mask = reliable(back, judge_flow(frames[t - 1], frames[t], method))
            np.savez(file, back=back.astype(np.float16), mask=mask)
        pairs.append((back, mask))
    return pairs


def warping_error(frames: list[np.ndarray], pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """Per pair: mean |O_t - O_t-1 warped by the judge's flow| over trusted pixels, 0-255 levels."""
    errors = []
    for t, (back, mask) in enumerate(pairs, start=1):
        warped = sample(frames[t - 1].astype(np.float32), back)
        diff = np.abs(frames[t].astype(np.float32) - warped).mean(-1)
        errors.append(float(diff[mask].mean()))
    return errors


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("video", type=Path, help="the input clip (or a folder of its frames)")
    p.add_argument("outputs", type=Path, nargs="*", help="folders of stylised frames (000000.png, ...)")
    p.add_argument("--frames", type=int, default=20, help="judge the first N frames")
    p.add_argument("--cache", type=Path, default=Path(__file__).resolve().parents[1] / "out" / "judge-cache")
    p.add_argument("--flow", choices=["deepflow", "farneback"], default="deepflow")
    p.add_argument("--truth", type=Path, help="exact flows of a synthetic clip (make_pan_clip.py --truth)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = p.parse_args()
    cv2.setNumThreads(1)

    inputs = input_frames(args.video, args.frames)
    h, w = inputs[0].shape[:2]
    pairs = judge_flows(args.video, inputs, args.cache, args.flow, args.truth)
    name = "the exact flow" if args.truth else "DeepFlow (opencv-contrib)" if args.flow == "deepflow" else "Farneback"
    report = {"judge": f"{name} at full resolution, forward-backward mask",
              "video": args.video.name, "frames": len(inputs), "width": w, "height": h,
              "reliable": float(np.mean([m.mean() for _, m in pairs])),
              "input": float(np.mean(warping_error(inputs, pairs))), "outputs": {}}
    for folder in args.outputs:
        outs = output_frames(folder, len(inputs), (w, h))
        report["outputs"][str(folder)] = float(np.mean(warping_error(outs, pairs[:len(outs) - 1])))
    if args.json:
        print(json.dumps(report))
        return
    print(f"judge: {report['judge']}; {report['video']} {w}x{h}, {len(inputs)} frames, "
          f"{report['reliable']:.0%} of pixels trusted")
    print(f"{report['input']:8.2f}  input frames")
    for name, err in report["outputs"].items():
        print(f"{err:8.2f}  {name}")


if __name__ == "__main__":
    main()

"""Judges that no brushwork loss optimises, for the benchmarks only (brushwork itself never imports this).

`brushwork evaluate`'s content and Gram distances are the very quantities the default preset minimises,
so they partly measure the objective against itself. Two more, sharing nothing with the VGG16 losses:

embedding  how far the output is from the painting in the 100-number style embedding of Magenta's
           arbitrary-stylisation predictor (a distilled MobileNet; `bash benchmarks/judge_env.sh` fetches
           its ONNX file): ||e(out) - e(painting)|| / ||e(photo) - e(painting)||, averaged over five
           crops (centre and corners, squares of the shortest side at 256 px; the painting's embedding is
           the mean of its own five). 1: as far from the painting as the photo; 0: the same.
edges      how much of the photo's structure survives, on edges rather than VGG features:
           1 - correlation of the gradient magnitudes of the photo's and the output's luminance, both
           blurred by 1/128 of the longest side first so brush texture finer than that does not count.
           0: the same edge map; 1: unrelated.

    python benchmarks/judges.py out.png --content photo.jpg --style painting.jpg   # all four measures
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from brushwork import distances, images

CACHE = Path(os.environ.get("BRUSHWORK_JUDGE_CACHE", Path(__file__).resolve().parent / ".cache"))
MODEL = CACHE / "arbitrary_predict.onnx"
SIDE = 256  # the predictor's fixed input size


class JudgeUnavailable(RuntimeError):
    """The embedding judge's model or runtime is missing; the message says how to install them."""


@lru_cache(maxsize=1)
def _session():
    try:
        import onnxruntime
    except ImportError:
        raise JudgeUnavailable("onnxruntime is not installed; run: bash benchmarks/judge_env.sh") from None
    if not MODEL.exists():
        raise JudgeUnavailable(f"{MODEL}: no such file; run: bash benchmarks/judge_env.sh")
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1  # tiny network; do not compete with the run being judged
    # The model is quantised (QuantizeLinear / DequantizeLinear around float convolutions). Fused into int8
    # kernels (the extended optimisations), it gives other embeddings on other CPUs: on an AMD EPYC without
    # VNNI, scores up to 0.048 off, on 23 pictures, those the Intel Xeon gave (benchmarks/results/judge-portability.md).
    # Unfused, it computes the quantised model's own float arithmetic, without the CPU-dependent int8 kernels,
    # for 3x the time.
    opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return onnxruntime.InferenceSession(str(MODEL), opts, providers=["CPUExecutionProvider"])


def available() -> bool:
    try:
        _session()
    except JudgeUnavailable:
        return False
    return True


def embedding(img: Image.Image) -> np.ndarray:
    """The predictor's 100-number style embedding of one 256x256 RGB image (NHWC input, 0-1)."""
    if img.size != (SIDE, SIDE):
        raise ValueError(f"the style predictor takes {SIDE}x{SIDE} images, not {img.size[0]}x{img.size[1]}")
    session = _session()
    x = np.asarray(img.convert("RGB"), dtype=np.float32)[None] / 255.0
    return session.run(None, {session.get_inputs()[0].name: x})[0].reshape(-1).astype(np.float64)


def five_crops(img: Image.Image) -> list[Image.Image]:
    """Centre and corner squares as large as the shortest side, each scaled to 256 px (Lanczos)."""
    w, h = img.size
    side = min(w, h)
    corners = [((w - side) // 2, (h - side) // 2), (0, 0), (w - side, 0), (0, h - side), (w - side, h - side)]
    return [img.crop((x, y, x + side, y + side)).resize((SIDE, SIDE), Image.LANCZOS) for x, y in corners]


def embedding_score(output, photo, painting) -> float:
    """Output-to-painting over photo-to-painting embedding distance, averaged over the five crops.

    The photo is resized to the output's size first (as `brushwork evaluate` does), so an output equal to
    the photo scores exactly 1; the painting's embedding, the mean of its five crops', does not depend on
    the output's size. This reproduced the issue's four figures within 0.009 (benchmarks/results/painterly.md, section 1).
    """
    out = images.load(output)
    photo_img = images.load(photo).resize(out.size, Image.LANCZOS)
    target = np.mean([embedding(c) for c in five_crops(images.load(painting))], axis=0)
    ratios = [np.linalg.norm(embedding(o) - target) / np.linalg.norm(embedding(p) - target)
              for o, p in zip(five_crops(out), five_crops(photo_img))]
    return float(np.mean(ratios))


def _edge_map(img: Image.Image) -> torch.Tensor:
    """Gradient magnitude of the luminance after a Gaussian blur of sigma = longest side / 128."""
    t = images.to_tensor(img)
    y = (0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2])[:, None]
    sigma = max(img.size) / 128
    radius = max(1, round(3 * sigma))
    k = torch.exp(-(torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2) / (2 * sigma**2))
    k = k / k.sum()
    y = F.pad(y, (radius,) * 4, mode="replicate")
    y = F.conv2d(F.conv2d(y, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    gx, gy = y[..., :, 1:] - y[..., :, :-1], y[..., 1:, :] - y[..., :-1, :]
    return torch.sqrt(gx[..., :-1, :] ** 2 + gy[..., :, :-1] ** 2).flatten()


def edge_distance(output, photo) -> float:
    """1 - Pearson correlation of the blurred edge maps of the output and the photo (at the output's size)."""
    out = images.load(output)
    a = _edge_map(out)
    b = _edge_map(images.load(photo).resize(out.size, Image.LANCZOS))
    a, b = a - a.mean(), b - b.mean()
    return float(1 - (a @ b) / (a.norm() * b.norm()).clamp_min(1e-12))


def score(output, photo, painting, *, embed: bool = True) -> dict[str, float]:
    """All the measures of one output: content and Gram style (optimised), embedding and edges (not)."""
    d = distances(output, photo, painting)
    row = {"content": d.content, "style": d.style, "edges": edge_distance(output, photo)}
    if embed:
        row["embedding"] = embedding_score(output, photo, painting)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", nargs="+", type=Path)
    p.add_argument("--content", required=True, type=Path)
    p.add_argument("--style", required=True, type=Path)
    args = p.parse_args()
    embed = available()
    if not embed:
        print("judges: no embedding judge (run: bash benchmarks/judge_env.sh); scoring without it", file=sys.stderr)
    for path in args.output:
        scores = score(path, args.content, args.style, embed=embed)
        print(json.dumps({"output": str(path), **{k: round(v, 4) for k, v in scores.items()}}))


if __name__ == "__main__":
    main()

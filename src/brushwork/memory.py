"""Peak memory of a run, estimated before it starts, so a size that cannot fit stops at once (with a
size that does) instead of being killed by the kernel minutes later.

The model is linear in pixels, fitted to the measured peak resident set of short runs on a CPU
(benchmarks/memory.py, figures in benchmarks/results/memory.md): a fixed part (Python, torch, the
network in both precisions) plus, per output pixel, the activations kept for the backward pass, their
gradients and the loss terms' buffers, plus each L-BFGS pair (two float32 images) and a style image
larger than the output. Other code (tiling for print sizes) can ask `estimate` what a tile costs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import BrushworkError
from .presets import Config

BASE = 385e6  # bytes at 0 pixels: interpreter, torch, VGG16 weights in float32 and the compute precision
PER_PIXEL = {torch.bfloat16: 1510.0, torch.float32: 2250.0}  # bytes per output pixel, measured with 2 pairs
MEASURED_PAIRS = 2  # L-BFGS pairs already inside PER_PIXEL (the calibration ran `--history 2`)
PAIR_PER_PIXEL = 2 * 3 * 4  # an L-BFGS pair: a step and a gradient difference, float32, 3 channels
ADAM_PER_PIXEL = 2 * 3 * 4  # Adam's two moments
STYLE_PER_PIXEL = 400.0  # bytes per style-image pixel beyond the output's count (targets: forward only)


class MemoryLimitError(BrushworkError, MemoryError):
    """The run would need more memory than the machine has free; the message names a size that fits."""


def estimate(width: int, height: int, config: Config, dtype: torch.dtype = torch.float32) -> int:
    """Peak resident bytes of a whole process running `config` at width x height in `dtype`."""
    pixels = width * height
    longest = max(width, height)
    style_side = config.style_size or max(2, round(longest * config.style_scale))
    style_pixels = style_side * style_side  # the style's aspect is not known here: square is the most
    per_pixel = PER_PIXEL.get(dtype, PER_PIXEL[torch.float32])
    if config.optimizer == "lbfgs":
        per_pixel += PAIR_PER_PIXEL * (config.history - MEASURED_PAIRS)
    elif config.optimizer == "adam":
        per_pixel += ADAM_PER_PIXEL
    return int(BASE + per_pixel * pixels + STYLE_PER_PIXEL * max(0, style_pixels - pixels))


def _meminfo(field: str, path: str = "/proc/meminfo") -> int | None:
    """A `kB` field of /proc/meminfo or /proc/self/status, in bytes; None where there is none (not Linux)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available() -> int | None:
    """Bytes the kernel can give without swapping (MemAvailable), None where unknown."""
    return _meminfo("MemAvailable")


def resident() -> int:
    """Bytes this process already holds (VmRSS): part of the estimate is already paid."""
    return _meminfo("VmRSS", "/proc/self/status") or 0


def largest_side(width: int, height: int, config: Config, dtype: torch.dtype, budget: int) -> int:
    """The longest side (same aspect as width x height) whose estimate fits in `budget` bytes; 0 if none."""
    lo, hi = 0, max(width, height)
    while lo < hi:  # the estimate grows with the side: bisect
        mid = (lo + hi + 1) // 2
        w, h = (max(1, round(width * mid / max(width, height))), max(1, round(height * mid / max(width, height))))
        if estimate(w, h, config, dtype) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def check(width: int, height: int, config: Config, dtype: torch.dtype, device: torch.device) -> None:
    """Raise MemoryLimitError if a CPU run at width x height would need more than is free now.

    Only the CPU is checked: the model was measured there (a GPU's memory is its own, and CUDA reports
    out-of-memory itself at once). Unknown free memory (not Linux) passes.
    """
    free = available()
    if device.type != "cpu" or free is None:
        return
    held = resident()
    need = estimate(width, height, config, dtype)
    if need - held <= free:
        return
    fits = largest_side(width, height, config, dtype, free + held)
    advice = f"--size {fits} fits, or close other programs" if fits >= 16 else "close other programs"
    raise MemoryLimitError(
        f"a {width}x{height} run needs about {need / 1e9:.1f} GB of memory but {free / 1e9:.1f} GB is free "
        f"(this process holds {held / 1e9:.1f} GB); {advice}")

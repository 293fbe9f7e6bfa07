"""Peak memory of a run, estimated before it starts, so a size that cannot fit stops at once (with a
size that does) instead of being killed by the kernel minutes later.

The model is linear in pixels, fitted to the measured peak resident set of short runs on a CPU
(benchmarks/memory.py, figures in benchmarks/results/memory.md): a fixed part (Python, torch, the
network in both precisions) plus, per output pixel, the activations kept for the backward pass, their
gradients and the loss terms' buffers, plus each L-BFGS pair (two float32 images) and a style image
larger than the output. Other code (tiling for print sizes) can ask `estimate` what a tile costs.
"""

from __future__ import annotations

import ctypes
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import BrushworkError
from .models import layer_geometry
from .presets import Config

# Bytes at 0 pixels (interpreter, torch, VGG16 weights in float32 and the compute precision, bfloat16's packed
# copies) and per output pixel, with 2 L-BFGS pairs: the line through the highest of three measurements at 512
# and 1024 px (where memory runs short; benchmarks/memory.py, on a 2-core Xeon with AMX), raised 10%: default
# runs (20 pairs) measured up to 5% above that line, and runs of one setting differ by up to 5%.
BASE = {torch.bfloat16: 664e6, torch.float32: 484e6}
PER_PIXEL = {torch.bfloat16: 1785.0, torch.float32: 2579.0}
MEASURED_PAIRS = 2  # L-BFGS pairs already inside PER_PIXEL (the calibration ran `--history 2`)
PAIR_PER_PIXEL = 2 * 3 * 4  # an L-BFGS pair: a step and a gradient difference, float32, 3 channels
ADAM_PER_PIXEL = 2 * 3 * 4  # Adam's two moments
CGROUP = Path("/sys/fs/cgroup")  # where this process's cgroup limits are mounted (containers)
PROC_CGROUP = Path("/proc/self/cgroup")  # which cgroup this process is in
CGROUP_FILES = (("", "memory.max", "memory.current", "inactive_file"),  # v2: (hierarchy, limit, usage, cache)
                ("memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))  # v1
STYLE_PER_PIXEL = 400.0  # bytes per style-image pixel beyond the output's count (targets: forward only)


class MemoryLimitError(BrushworkError, MemoryError):
    """The run would need more memory than the machine has free; the message names a size that fits."""


def region_per_pixel(config: Config) -> float:
    """Bytes per output pixel of one masked region (`--mask`, or the style's part outside `--keep-mask`):
    losses.masked_gram's masked copy of every style layer's features (float32, as the loss terms work), kept
    by autograd. Peak resident at 512 px, float32: two regions 1.29 GB and a keep mask 1.14 GB against 1.10 GB
    plain (this term is 488 bytes a region: estimates 1.53 and 1.40 GB, 1.27 GB plain, since the refit of the
    eleventh session)."""
    return maps_per_pixel(config.arch, config.style_layers)


def maps_per_pixel(arch: str, layers: tuple[str, ...]) -> float:
    """Bytes per input pixel of float32 feature maps at `layers` (content targets, masked copies): relu4_2
    holds 512 channels at 1/64 of the pixels (32 bytes), a shallow relu2_2 128 channels at 1/4 (128 bytes)."""
    geometry = layer_geometry(arch)
    return 4.0 * sum(geometry[layer][0] / geometry[layer][1] ** 2 for layer in layers)


def estimate(width: int, height: int, config: Config, dtype: torch.dtype = torch.float32, regions: int = 0) -> int:
    """Peak resident bytes of a whole process running `config` at width x height in `dtype`, with `regions`
    masked style regions (0: the style over the whole picture)."""
    pixels = width * height
    longest = max(width, height)
    style_side = config.style_size or max(2, round(longest * config.style_scale))
    style_pixels = style_side * style_side  # the style's aspect is not known here: square is the most
    base, per_pixel = BASE.get(dtype, BASE[torch.float32]), PER_PIXEL.get(dtype, PER_PIXEL[torch.float32])
    if config.optimizer == "lbfgs":
        per_pixel += PAIR_PER_PIXEL * (config.history - MEASURED_PAIRS)
    elif config.optimizer == "adam":
        per_pixel += ADAM_PER_PIXEL
    per_pixel += regions * region_per_pixel(config)
    if config.histogram_weight and not regions:  # regions go without it (perceptual.terms)
        # a float32 map per histogram layer (the matched values, kept from one evaluation to the next) and the
        # gradient kept for the backward pass in `dtype`: +0.19 GiB measured at 1024 px in bfloat16, where this
        # counts 0.38 GiB
        maps = 1 + dtype.itemsize / 4
        per_pixel += maps * maps_per_pixel(config.arch, config.histogram_layers)
    return int(base + per_pixel * pixels + STYLE_PER_PIXEL * max(0, style_pixels - pixels))


def _meminfo(field: str, path: str = "/proc/meminfo") -> int | None:
    """A `kB` field of /proc/meminfo or /proc/self/status, in bytes; None where there is none (not Linux)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_bytes(path: Path) -> int | None:
    """A cgroup file holding a byte count; None if absent or unlimited ("max", or v1's near-2**63)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) < 2**60 else None


def _stat(path: Path, field: str) -> int:
    """One counter of a cgroup's memory.stat, in bytes; 0 where there is none."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == field:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _own_cgroups(proc: Path) -> dict[str, str]:
    """This process's cgroup per hierarchy, from /proc/self/cgroup: "" for v2's unified one, "memory" for v1's."""
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        return {}
    own = {}
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "" or "memory" in controllers.split(","):
            own["memory" if controllers else ""] = path
    return own


def cgroup_free(root: Path | None = None, proc: Path | None = None) -> int | None:
    """Bytes left under this process's cgroup memory limits (v2 `memory.max`, or v1's), None without one.

    A container's limit is not in MemAvailable: a run past it is killed by the kernel all the same. The usage
    counts page cache, which the kernel drops before it kills: its inactive part is taken off. The cgroup is
    the one /proc/self/cgroup names (or the mount root, where a container shows its own there), and every
    limit above it applies too."""
    root = root or CGROUP
    own = _own_cgroups(proc or PROC_CGROUP)
    for hierarchy, limit, usage, cache in CGROUP_FILES:
        top = root / hierarchy
        folder = top / own.get(hierarchy, "").lstrip("/")
        if not (folder / usage).is_file():
            folder = top
        frees = []
        for level in (folder, *folder.parents[:len(folder.relative_to(top).parts)]):
            cap = _read_bytes(level / limit)
            if cap is not None:
                used = (_read_bytes(level / usage) or 0) - _stat(level / "memory.stat", cache)
                frees.append(max(0, cap - max(0, used)))
        if frees:
            return min(frees)
    return None


def available() -> int | None:
    """Bytes the process can still get: the smaller of MemAvailable (what the kernel gives without swapping)
    and what the cgroup limit leaves; None where neither is known."""
    known = [v for v in (_meminfo("MemAvailable"), cgroup_free()) if v is not None]
    return min(known) if known else None


def release() -> None:
    """Hand memory that is freed but still held back to the system (glibc's malloc_trim; elsewhere nothing).
    Freed tensors below 32 MB stay in the C allocator's heap: after a print's whole-picture solve and its
    full-size targets that kept hundreds of MB resident at 1024 px, under the full-size tiles, where no plan
    counts them."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, loaded once (a print calls release after every window); None elsewhere."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def resident() -> int:
    """Bytes this process already holds (VmRSS): part of the estimate is already paid."""
    return _meminfo("VmRSS", "/proc/self/status") or 0


def parse_size(text: str) -> int:
    """`--max-memory`: "8G", "8GB", "1500M", "512MiB", "2000000000B" (bytes), or a plain number of gigabytes."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])(i?)b?|(b?))\s*", text, re.IGNORECASE)
    if not found or float(found[1]) <= 0:
        raise ValueError(f"{text!r} is not a memory size; give one like 8G, 1500M or 8 (gigabytes)")
    if found[2] is None:  # no prefix: "8" is gigabytes, "8B" bytes
        return int(float(found[1]) * (1 if found[4] else 1e9))
    base = 1024 if found[3] else 1000
    return int(float(found[1]) * base ** ("kmgt".index(found[2].lower()) + 1))


def largest_side(width: int, height: int, config: Config, dtype: torch.dtype, budget: int, regions: int = 0) -> int:
    """The longest side (same aspect as width x height) whose estimate fits in `budget` bytes; 0 if none."""
    lo, hi = 0, max(width, height)
    while lo < hi:  # the estimate grows with the side: bisect
        mid = (lo + hi + 1) // 2
        w, h = (max(1, round(width * mid / max(width, height))), max(1, round(height * mid / max(width, height))))
        if estimate(w, h, config, dtype, regions) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(frozen=True)
class Budget:
    """The bytes a run may use, and how to say where that figure came from."""

    bytes: int
    have: str  # "--max-memory allows 8.0 GB", "5.1 GB is free (this process holds 0.4 GB)"
    advice: str  # what else the user can do


def show(size: float) -> str:
    """Bytes for a message: MB below 10 GB, so a need and a cap a few MB apart never read the same."""
    return f"{size / 1e6:.0f} MB" if size < 10e9 else f"{size / 1e9:.1f} GB"


def budget(device: torch.device, max_memory: int | None = None) -> Budget | None:
    """`max_memory` (the user's cap, which replaces what is free), else what is free plus what this process
    already holds; on CUDA the GPU's free memory (plus the fixed part, mostly host memory there), for planning print
    sizes only (the model was measured on a CPU; CUDA reports out-of-memory itself at once). None where
    free memory is unknown (not Linux, other devices)."""
    if max_memory is not None:
        return Budget(max_memory, f"--max-memory allows {show(max_memory)}", "or raise --max-memory")
    if device.type == "cuda":
        free_gpu = torch.cuda.mem_get_info(device)[0]
        return Budget(int(free_gpu + BASE[torch.float32]), f"{show(free_gpu)} of GPU memory is free", "or free the GPU")
    free = available()
    if device.type != "cpu" or free is None:
        return None
    held = resident()
    return Budget(free + held, f"{show(free)} is free (this process holds {show(held)})",
                  "or close other programs")


def refuse(what: str, need: int, limit: Budget, fits: int) -> MemoryLimitError:
    """The one-line error: what needs how much, what there is, and the --size that fits (if any)."""
    advice = f"--size {fits} fits, {limit.advice}" if fits >= 16 else limit.advice.removeprefix("or ")
    return MemoryLimitError(f"{what} needs about {show(need)} of memory but {limit.have}; {advice}")


def check(width: int, height: int, config: Config, dtype: torch.dtype, device: torch.device,
          max_memory: int | None = None, processes: int = 1) -> None:
    """Raise MemoryLimitError if `processes` whole-picture runs at width x height would need more than
    `budget` gives, all together (on CUDA: the GPU's free memory, unless `max_memory`)."""
    limit = budget(device, max_memory)
    need = estimate(width, height, config, dtype) * processes
    if limit is None or need <= limit.bytes:
        return
    each = f" ({processes} workers)" if processes > 1 else ""
    raise refuse(f"a {width}x{height} run{each}", need, limit,
                 largest_side(width, height, config, dtype, limit.bytes // processes))

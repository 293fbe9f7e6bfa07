"""Apply a trained network: one image, many images, or a video with a temporal step.

Any size and aspect: the input is mirror-padded by a margin (and up to a multiple of 4) and the
output cropped back, so the borders come out as cleanly as the middle rather than framed by the
network's own padding.
"""

from __future__ import annotations

import copy
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from .. import images
from ..nets.transformer import TransformerNet
from ..perceptual import pick_device, pick_precision
from ..presets import check_range
from ..video import FLOW, VideoInfo, flow_frame_size
from .modelfile import Model, load_model

# Share of the warped previous output kept where the flow is reliable. Chosen with the first bundled Starry
# Night, 24 frames at 256 px, DIS's fast preset: the independent DeepFlow judge's warping error was 38.8% of
# frame by frame at 0.9 (0.85: 40.3%, 0.8: 42.2%) for 10% more style distance (benchmarks/results/instant-video.json).
TEMPORAL = 0.9
# The temporal step's flow is computed at up to this longest side, from the input frames whatever the output's
# size: at 256x144 output it left 35.4% of udnie's flicker under the DeepFlow judge against 39.5% from the
# output's own frames, at 512x288 39.8% against 42.1% (README, "Video: the temporal step")
FLOW_SIDE = 640
MARGIN = 16  # pixels of mirrored border around the input; the first layer alone sees 4 px beyond an edge


def padded(x: torch.Tensor, multiple: int, run: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """`run` (pixels to pixels of the same size) on `x` mirror-padded by MARGIN and up to sides that are
    multiples of `multiple`, cropped back to `x`'s size, as float32 pixels clamped to 0-255."""
    h, w = x.shape[-2:]
    pad = (MARGIN, MARGIN + (-(w + 2 * MARGIN)) % multiple, MARGIN, MARGIN + (-(h + 2 * MARGIN)) % multiple)
    mode = "reflect" if min(h, w) > max(pad) else "replicate"  # reflection needs more pixels than it adds
    y = run(F.pad(x.float(), pad, mode=mode))
    return y[..., MARGIN:MARGIN + h, MARGIN:MARGIN + w].float().clamp(0, 255)


def stylize_tensor(net: TransformerNet, x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) pixels to stylised float32 pixels of the same shape, clamped to 0-255, computed in the
    precision of the network's weights."""
    dtype = next(net.parameters()).dtype
    with torch.no_grad():
        return padded(x, net.config.multiple, lambda p: net(p.to(dtype)))


class Painter(Protocol):
    """Anything that paints (B, 3, H, W) pixels in one pass: a trained network (InstantStylizer) or the
    arbitrary-style network (wct.WCTStylizer); `sources` are the files it read."""

    sources: list

    def tensor(self, x: torch.Tensor) -> torch.Tensor: ...


class InstantStylizer:
    """A model loaded once, applied to many images.

    >>> paint = InstantStylizer("starry")
    >>> for path in photos: paint(path).save(...)
    """

    def __init__(self, model: str | os.PathLike | Model, *, device: str | torch.device | None = None,
                 precision: str = "auto", compile: bool | None = False) -> None:
        self.device = pick_device(device)
        self.dtype = pick_precision(precision, self.device)
        self.model = model if isinstance(model, Model) else load_model(model, self.device)
        self.sources = [self.model.path]
        # Weights stored in the compute precision, not autocast: autocast recasts every weight on every
        # call and runs instance norm in float32 between bfloat16 convolutions (1024 px on this CPU:
        # 7.2 s autocast, 2.3 s bfloat16 weights, one thread; outputs 0.36 levels apart on average).
        # Plain NCHW, not channels-last: the reflection pads and norms hand back NCHW, so channels-last
        # paid a layout copy per layer (CPU time at 512 px 0.283 against 0.321 s, 1080p 2.36 against
        # 3.12 s; benchmarks/results/instant-speed-cpu.md).
        self.net = copy.deepcopy(self.model.net).to(self.device, self.dtype)
        # compile (None: on CUDA only, as the CLI's --compile) fuses the pads, norms and ReLUs: 23-35% less
        # CPU at 512 px-1080p here, for about a minute's compiling per input size
        if compile if compile is not None else self.device.type == "cuda":
            self.net = torch.compile(self.net, dynamic=False)

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        return stylize_tensor(self.net, x.to(self.device))

    def __call__(self, image: str | os.PathLike | Image.Image, size: int | None = None) -> Image.Image:
        """The stylised image; `size` is the longest side (None keeps the photo's size)."""
        photo = images.fit(images.load(image), size)
        return images.to_image(self.tensor(images.to_tensor(photo, self.device)))


@dataclass
class InstantVideoResult:
    output: Path
    frames: int
    size: tuple[int, int]
    audio: bool
    seconds: float
    reliable: float  # mean fraction of pixels blended with the warped previous output


def blend_with_previous(out: np.ndarray, frame: np.ndarray, prev_frame: np.ndarray, prev_out: np.ndarray,
                        strength: float, method: str, flow_side: int = FLOW_SIDE) -> tuple[np.ndarray, float]:
    """The temporal step: where the input's flow is reliable (video.occlusion_mask), move the network's
    output `strength` of the way towards the previous output warped into this frame.

    `frame` and `prev_frame` are the input frames at any size (larger than `out` gives a finer flow). Flow
    and mask are computed with them shrunk to `flow_side` px on the longest side, then resized to `out`:
    motion is smooth, and at 1280x720 the two flows and the mask cost about 4x less than at full size.
    Returns the blended frame and the fraction of reliable pixels."""
    import cv2

    from ..video import flow, occlusion_mask, resize_flow, resize_mask, warp

    h, w = frame.shape[:2]
    scale = min(1.0, flow_side / max(h, w))
    small = [cv2.resize(f, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else f
             for f in (frame, prev_frame)]
    bwd, fwd = flow(small[0], small[1], method), flow(small[1], small[0], method)
    mask = occlusion_mask(fwd, bwd)
    size = (out.shape[1], out.shape[0])
    bwd, mask = resize_flow(bwd, size), resize_mask(mask, size)
    warped = warp(prev_out, bwd)
    a = (strength * mask)[..., None]
    return out * (1 - a) + warped * a, float(mask.mean())


def stylize_frames(paint: Painter, frames: Iterable[np.ndarray], temporal: float = TEMPORAL,
                   flow_method: str = FLOW) -> Iterator[tuple[np.ndarray, float]]:
    """Stylised (H, W, 3) float32 frames, one per input frame as it arrives, each with the share of its
    pixels blended with the previous output (0 for the first, or with `temporal` 0)."""
    return stylize_pairs(paint, ((f, f) for f in frames), temporal, flow_method)


def stylize_pairs(paint: Painter, pairs: Iterable[tuple[np.ndarray, np.ndarray]], temporal: float = TEMPORAL,
                  flow_method: str = FLOW) -> Iterator[tuple[np.ndarray, float]]:
    """As `stylize_frames`, for (frame, the same frame for the flow) pairs (`video.with_flow_frames`): a
    larger flow frame (up to FLOW_SIDE) gives the temporal step a finer flow."""
    prev: tuple[np.ndarray, np.ndarray] | None = None
    for frame, seen in pairs:
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
        out, share = paint.tensor(x)[0].permute(1, 2, 0).cpu().numpy(), 0.0
        if temporal > 0 and prev is not None:
            out, share = blend_with_previous(out, seen, prev[0], prev[1], temporal, flow_method)
        prev = (seen, out)
        yield out, share


def flow_dims(info: VideoInfo, dims: tuple[int, int]) -> tuple[int, int]:
    """The size to read the input at for the temporal step's flow: the input's own, at most FLOW_SIDE on the
    longest side, when finer than the output's `dims`; else `dims` (one decoder; larger frames are shrunk)."""
    finer = flow_frame_size(info, FLOW_SIDE)
    return finer if max(finer) > max(dims) else dims


def stylize_video(input: str | os.PathLike, model: str | os.PathLike | Model | Painter,
                  output: str | os.PathLike, *,
                  size: int | None = None, temporal: float = TEMPORAL, flow_method: str = FLOW,
                  max_frames: int | None = None, fps: float | None = None,
                  callback: Callable[[int, int | None], None] | None = None,
                  device: str | torch.device | None = None, precision: str = "auto", compile: bool | None = False,
                  overwrite: bool = False) -> InstantVideoResult:
    """Stylise each frame with the network as it is decoded, blend it towards the warped previous output
    (`temporal` 0 = frame by frame), and encode an MP4 with the source's audio (video.py's reader and
    encoder). `model` is a trained network's name, file or Model, or a ready Painter (the arbitrary-style
    network, whose device and precision are its own). `callback(index, total)` after each frame;
    `overwrite` lets `output` replace an input."""
    from .. import video

    start = time.perf_counter()
    output = video.check_output(output)
    for name, value in (("temporal_blend", temporal), ("size", size), ("max_frames", max_frames), ("fps", fps)):
        check_range(name, value)
    ready = hasattr(model, "tensor")  # a painter built by the caller (the arbitrary-style network)
    images.check_not_an_input(output, [input, *(model.sources if ready else [model])], overwrite)
    info = video.probe(input, fps)
    paint = model if ready else InstantStylizer(model, device=device, precision=precision, compile=compile)
    dims = video.frame_size(info, size)
    total = info.frames if max_frames is None or info.frames is None else min(info.frames, max_frames)
    frames = video.with_flow_frames(info, dims, flow_dims(info, dims) if temporal > 0 else dims)
    encoder = video.Encoder.stream(info, dims, output, max_frames)
    count, reliable = 0, []
    try:
        chosen = frames if max_frames is None else itertools.islice(frames, max_frames)
        for index, (out, share) in enumerate(stylize_pairs(paint, chosen, temporal, flow_method)):
            if index:
                reliable.append(share)
            encoder.write(out.round().clip(0, 255).astype(np.uint8))
            count = index + 1
            if callback is not None:
                callback(index, total)
        if count == 0:
            raise video.VideoError(f"{info.path}: has no frames; give a video with at least one frame")
        audio = encoder.finish()
    except BaseException:
        encoder.abort()
        raise
    finally:
        frames.close()
    return InstantVideoResult(output, count, dims, audio, time.perf_counter() - start,
                              float(np.mean(reliable)) if reliable else 0.0)

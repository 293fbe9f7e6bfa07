"""The two distances we judge results by, on the Caffe VGG16, independent of any run's settings.

content = ||F(out) - F(content)||^2 / ||F(content)||^2 at relu4_2
style   = mean over relu1_1..relu5_1 of ||G(out) - G(style)||^2 / ||G(style)||^2, G = F F^T / (h w)
The output is measured at its own size; the content image is resized to exactly that size and the
style image so that its longest side equals the output's (Lanczos).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from PIL import Image

from . import images
from .losses import StyleTerm
from .perceptual import Perceptual
from .presets import Config
from .weights import load_weights

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# The criterion's relative content and (equally weighted) style terms, in float32, fixed here so that no
# run's settings move the yardstick.
JUDGE = Config(content_layers=(CONTENT_LAYER,), style_layers=STYLE_LAYERS, loss_form="relative",
               style_layer_weights=None, style_scale=1.0, style_size=None, precision="float32", compile=False)


@dataclass(frozen=True)
class Distances:
    content: float
    style: float  # the mean of style_layers
    # per layer: which scales of texture a result misses
    style_layers: dict[str, float] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        return f"content {self.content:.3f}  style {self.style:.3f}"


@lru_cache(maxsize=2)
def _judge(device: str) -> Perceptual:
    return Perceptual(JUDGE, load_weights("vgg16"), device)


def distances(output: str | os.PathLike | Image.Image, content: str | os.PathLike | Image.Image,
              style: str | os.PathLike | Image.Image, device: str = "cpu") -> Distances:
    """Relative content and style distances of `output` (see the module docstring)."""
    out = images.load(output)
    return judge(content, style, out.size, device)(out)


def judge(content: str | os.PathLike | Image.Image, style: str | os.PathLike | Image.Image,
          size: tuple[int, int], device: str = "cpu") -> Callable[[str | os.PathLike | Image.Image], Distances]:
    """`distances` for many outputs of one `size` (width, height) against the same photo and painting:
    their features are computed once, so judging each further output costs one network pass."""
    judge_net = _judge(device)
    with torch.no_grad():
        photo = images.to_tensor(images.load(content).resize(size, Image.LANCZOS), judge_net.device)
        content_term = judge_net.content_term(photo)
        style_term = judge_net.style_term([images.load(style)], [1.0], max(size))
    # each style layer its own term (the style term is their unweighted mean), so one pass gives them all
    terms = [(content_term, 1.0)] + [(StyleTerm({k: t}, form=style_term.form, name=k), 1.0)
                                     for k, t in style_term.targets.items()]

    def measure(output: str | os.PathLike | Image.Image) -> Distances:
        out = images.load(output)
        if out.size != tuple(size):
            raise ValueError(f"this judge measures {size[0]}x{size[1]} outputs, not {out.size[0]}x{out.size[1]}")
        with torch.no_grad():
            values = judge_net.evaluate(images.to_tensor(out, judge_net.device), terms)
        layers = {k: values[k].item() for k in STYLE_LAYERS}
        return Distances(values["content"].item(), sum(layers.values()) / len(layers), layers)
    return measure

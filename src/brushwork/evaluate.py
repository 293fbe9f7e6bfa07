"""The two distances we judge results by, on the Caffe VGG16, independent of any run's settings.

content = ||F(out) - F(content)||^2 / ||F(content)||^2 at relu4_2
style   = mean over relu1_1..relu5_1 of ||G(out) - G(style)||^2 / ||G(style)||^2, G = F F^T / (h w)
The output is measured at its own size; the content image is resized to exactly that size and the
style image so that its longest side equals the output's (Lanczos).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import torch
from PIL import Image

from . import images
from .losses import gram
from .models import VGGFeatures
from .weights import load_weights

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class Distances:
    content: float
    style: float

    def __str__(self) -> str:
        return f"content {self.content:.3f}  style {self.style:.3f}"


@lru_cache(maxsize=2)
def _judge(device: str) -> tuple[VGGFeatures, object]:
    w = load_weights("vgg16")
    net = VGGFeatures("vgg16", "max", last_layer="relu5_1")
    net.load_weights(w.state_dict)
    return net.eval().requires_grad_(False).to(device), w.preprocessing


def distances(output: str | os.PathLike | Image.Image, content: str | os.PathLike | Image.Image,
              style: str | os.PathLike | Image.Image, device: str = "cpu") -> Distances:
    """Relative content and style distances of `output` (see the module docstring)."""
    out = images.load(output)
    content_img = images.load(content).resize(out.size, Image.LANCZOS)
    style_img = images.fit(images.load(style), max(out.size))
    net, prep = _judge(device)
    layers = (CONTENT_LAYER, *STYLE_LAYERS)
    with torch.no_grad():
        f_out, f_c, f_s = (net(prep(images.to_tensor(i, device)), layers)
                           for i in (out, content_img, style_img))
        c = ((f_out[CONTENT_LAYER] - f_c[CONTENT_LAYER]).pow(2).sum()
             / f_c[CONTENT_LAYER].pow(2).sum()).item()
        s = [((gram(f_out[k]) - gram(f_s[k])).pow(2).sum() / gram(f_s[k]).pow(2).sum()).item()
             for k in STYLE_LAYERS]
    return Distances(c, sum(s) / len(s))

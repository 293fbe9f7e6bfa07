"""Johnson, Alahi & Fei-Fei 2016's image transformation network, after pytorch/examples'
fast_neural_style `transformer_net.py`.

Reflection padding (no dark frame at the borders), instance norm (contrast of each picture normalised
away, Ulyanov et al. 2016), five residual blocks at quarter resolution, and nearest-neighbour upsampling
followed by a convolution instead of transposed convolutions, whose uneven overlap leaves checkerboards
(Odena et al. 2016). Pixels in and out are 0-255, as everywhere in brushwork.

With `skip` (architecture "johnson-skip") the network adds its output to the photo, so the photo's content
is there from step 0 and the network only learns the change towards the painting. The last layer keeps
its random start: zeroed (an exact identity) it stalled there, the style's gradients cancelling between
batches (benchmarks/results/instant-recipes.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

ARCHES = ("johnson", "johnson-skip")  # a header's "arch": the plain network, or with the global skip


@dataclass(frozen=True)
class TransformerConfig:
    """The shape of one network; stored in every model file so it can be rebuilt without guessing."""

    width: int = 16  # channels of the first layer; 32 is Johnson's, 16 jcjohnson's half-width models
    blocks: int = 5  # residual blocks at a quarter of the resolution
    skip: bool = False  # output = input + network(input): the photo's content is kept from the first step

    @classmethod
    def from_header(cls, arch: str, config: dict[str, int]) -> "TransformerConfig":
        return cls(**config, skip=arch == "johnson-skip")

    @property
    def arch(self) -> str:
        return ARCHES[self.skip]

    def __post_init__(self) -> None:
        if self.width < 1 or self.blocks < 0:
            raise ValueError(f"a transformer needs width >= 1 and blocks >= 0, not {self.width}/{self.blocks}")

    def to_dict(self) -> dict[str, int]:
        """The sizes; `skip` travels in the architecture's name, so an older reader refuses the file."""
        return {k: v for k, v in asdict(self).items() if k != "skip"}

    @property
    def multiple(self) -> int:
        """Input sides must be a multiple of this (two stride-2 convolutions, undone by two upsamplings)."""
        return 4


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, padding_mode="reflect")


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True)


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, 3), _norm(channels), nn.ReLU(),
                                  _conv(channels, channels, 3), _norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a convolution: every output pixel sees the same number of inputs."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _conv(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2, mode="nearest"))


class TransformerNet(nn.Module):
    def __init__(self, config: TransformerConfig = TransformerConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.down = nn.Sequential(
            _conv(3, w, 9), _norm(w), nn.ReLU(),
            _conv(w, 2 * w, 3, 2), _norm(2 * w), nn.ReLU(),
            _conv(2 * w, 4 * w, 3, 2), _norm(4 * w), nn.ReLU())
        self.res = nn.Sequential(*(Residual(4 * w) for _ in range(config.blocks)))
        self.up = nn.Sequential(
            Upsample(4 * w, 2 * w), _norm(2 * w), nn.ReLU(),
            Upsample(2 * w, w), _norm(w), nn.ReLU(),
            _conv(w, 3, 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels 0-255, H and W multiples of 4, to the same shape; not clamped, so training
        sees the gradient of pixels that overshoot."""
        y = self.up(self.res(self.down(x / 255.0))) * 255.0
        return x + y if self.config.skip else y

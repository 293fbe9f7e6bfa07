"""Decoders that turn the Caffe VGG16's features back into pixels (Li et al. 2017, "Universal style
transfer via feature transforms"): one per level relu1_1 .. relu4_1, each the encoder's mirror.

Each decoder walks VGG16's own layer list (`models.CONFIGS`) backwards from conv{k}_1: a 3x3
convolution for every convolution, nearest-neighbour x2 for every pooling (no transposed convolutions:
no checkerboards, Odena et al. 2016), reflection padding, ReLU between layers. `width` scales the
channels (VGG's 64-128-256 becomes 32-64-128 at the default half width): a quarter of the arithmetic, so
the four decoders train on a CPU, and 2.6 MB in float16. Pixels out are 0-255, not clamped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..models import CONFIGS

ARCH = "wct-decoders"
MAX_LEVEL = 4  # relu5_1 is not used: its decoder would double the arithmetic for the coarsest strokes only
# Typical size (standard deviation) of each level's features, 0-255 pixels through the Caffe VGG16 (the demo
# photo at 256 px: 52, 319, 624, 463): dividing by it gives every decoder an input of about unit scale.
FEATURE_SCALE = {1: 50.0, 2: 300.0, 3: 600.0, 4: 450.0}


def level_name(level: int) -> str:
    return f"relu{level}_1"


@dataclass(frozen=True)
class DecoderConfig:
    """The shape of a set of decoders; stored in the model file's header."""

    levels: int = 4  # decoders for relu1_1 .. relu{levels}_1
    width: int = 32  # channels of the mirror of VGG's first block (VGG's own: 64); deeper blocks double it

    arch = ARCH

    def __post_init__(self) -> None:
        if not 1 <= self.levels <= MAX_LEVEL or self.width < 1:
            raise ValueError(f"decoders need 1 <= levels <= {MAX_LEVEL} and width >= 1, not "
                             f"{self.levels}/{self.width}")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def deepest_channels(self) -> int:
        """Channels of VGG16 at relu{levels}_1: what the deepest decoder reads."""
        return _encoder_layers(self.levels)[-1][1]


def _encoder_layers(level: int) -> list[tuple[int, int] | None]:
    """VGG16's layers up to conv{level}_1: (in, out) channels per convolution, None per pooling."""
    layers: list[tuple[int, int] | None] = []
    cin, block = 3, 1
    for item in CONFIGS["vgg16"]:
        if item == "M":
            layers.append(None)
            block += 1
            continue
        layers.append((cin, int(item)))
        cin = int(item)
        if block == level:  # conv{level}_1 is the first convolution of its block
            return layers
    raise ValueError(f"VGG16 has no conv{level}_1")


class Decoder(nn.Module):
    """relu{level}_1 features (B, C, H/2^(level-1), W/2^(level-1)) to (B, 3, H, W) pixels."""

    def __init__(self, level: int, width: int) -> None:
        super().__init__()
        self.level = level
        scaled = lambda c: max(1, c * width // 64)  # noqa: E731 - VGG's channel count at this width
        layers: list[nn.Module] = []
        encoder = _encoder_layers(level)
        for i, layer in enumerate(reversed(encoder)):
            if layer is None:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
                continue
            cin, cout = layer
            first, last = i == 0, i == len(encoder) - 1
            layers.append(nn.Conv2d(cout if first else scaled(cout), cin if last else scaled(cin), 3, padding=1,
                                    padding_mode="reflect"))
            if not last:
                layers.append(nn.ReLU())
        self.body = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.body(features / FEATURE_SCALE[self.level]) * 255.0


class Decoders(nn.Module):
    """One decoder per level, relu1_1 first."""

    def __init__(self, config: DecoderConfig = DecoderConfig()) -> None:
        super().__init__()
        self.config = config
        self.decoders = nn.ModuleList(Decoder(level, config.width) for level in range(1, config.levels + 1))

    @property
    def layers(self) -> tuple[str, ...]:
        """The VGG layers decoded, finest first."""
        return tuple(level_name(d.level) for d in self.decoders)

    def forward(self, features: torch.Tensor, level: int) -> torch.Tensor:
        return self.decoders[level - 1](features)

"""Ulyanov & Lebedev 2016's random shallow network for sound: one convolution over time, ReLU.

The log-magnitude spectrogram's frequency bins are the input channels and time is the only axis, so a
filter sees every frequency at once over `width` frames. The weights are never trained: random filters
(He-like normal, as in neural-style-audio) already give Gram matrices that describe a sound's texture.
Several widths are banks side by side, each its own "layer" for the loss terms (short widths catch
timbre, long ones rhythm and melody).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SpectralConfig:
    """The shape and seed of one random network; equal configs give equal networks."""

    bins: int  # input channels: n_fft // 2 + 1
    filters: int = 4096  # filters in each bank
    widths: tuple[int, ...] = (11,)  # kernel width in frames, one bank each
    seed: int = 0

    def __post_init__(self) -> None:
        if self.bins < 1 or self.filters < 1 or not self.widths or min(self.widths) < 1:
            raise ValueError(f"a spectral network needs bins, filters and widths of at least 1, not {self}")


class SpectralNet(nn.Module):
    """Random 1-D convolutions over a (B, bins, T) spectrogram; features are (B, filters, 1, T) per bank,
    the (B, C, H, W) shape that `losses.gram` and the content term read."""

    def __init__(self, config: SpectralConfig) -> None:
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(config.seed)
        self.banks = nn.ParameterList()
        for width in config.widths:
            # neural-style-audio's std: sqrt(2) * sqrt(2 / ((in + out) * width))
            std = math.sqrt(2) * math.sqrt(2.0 / ((config.bins + config.filters) * width))
            weight = torch.randn(config.filters, config.bins, width, generator=generator) * std
            self.banks.append(nn.Parameter(weight, requires_grad=False))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"width{w}" for w in self.config.widths)

    def forward(self, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for name, weight in zip(self.names, self.banks):
            # "same" padding keeps T frames whatever the width, so content features line up frame by frame
            out[name] = torch.relu(nn.functional.conv1d(spec, weight, padding="same")).unsqueeze(2)
        return out

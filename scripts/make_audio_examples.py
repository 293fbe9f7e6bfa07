#!/usr/bin/env python3
"""Make the example sounds for `brushwork audio`: speech, a melody and a humpback whale, 22,050 Hz mono.

    apt-get install espeak-ng                                   # the speech synthesiser (Debian/Ubuntu)
    python scripts/make_audio_examples.py --out out/audio       # 10 s clips, for benchmarks/audio_quality.py
    python scripts/make_audio_examples.py --out src/brushwork/assets/audio --seconds 4   # the bundled ones

- speech.ogg: espeak-ng (English voice, 150 words a minute) reading TEXT, written for brushwork.
- melody.ogg: the opening of Beethoven's "Ode to Joy" (public domain), synthesised here: plucked strings
  (Karplus-Strong) over a soft sine bass, so it has both notes and a rhythm.
- humpback.ogg: the first seconds of ../shared/images/audio/glacier_bay_humpback.ogg (US National Park
  Service, public domain), resampled by brushwork.audio.load.
Each is padded or cut to --seconds and peak-normalised to 0.7. Same command, same files (no randomness
beyond the fixed seed of the plucked strings).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from brushwork import audio  # noqa: E402

RATE = audio.RATE
HUMPBACK = Path(__file__).resolve().parents[2] / "shared/images/audio/glacier_bay_humpback.ogg"
TEXT = ("A photograph can be repainted in the style of a painting. The same method works on sound: "
        "this voice can be made to sing like a whale, or to ring like a plucked string. "
        "Listen closely, and then try it with your own recordings.")
# Ode to Joy, first two phrases: (MIDI note, beats)
TUNE = [(64, 1), (64, 1), (65, 1), (67, 1), (67, 1), (65, 1), (64, 1), (62, 1), (60, 1), (60, 1), (62, 1),
        (64, 1), (64, 1.5), (62, 0.5), (62, 2), (64, 1), (64, 1), (65, 1), (67, 1), (67, 1), (65, 1), (64, 1),
        (62, 1), (60, 1), (60, 1), (62, 1), (64, 1), (62, 1.5), (60, 0.5), (60, 2)]
BEAT = 0.32  # seconds


def speech() -> torch.Tensor:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(wav), TEXT], check=True)
        return audio.load(wav)


def pluck(freq: float, seconds: float, generator: torch.Generator) -> torch.Tensor:
    """Karplus-Strong: a burst of noise through a delay line with a two-tap averaging loss."""
    period = max(2, round(RATE / freq))
    n = round(seconds * RATE)
    line = torch.rand(period, generator=generator).double() * 2 - 1
    out = torch.empty(n, dtype=torch.float64)
    for start in range(0, n, period):  # one period at a time: each sample reads the previous period
        block = 0.996 * 0.5 * (line + torch.roll(line, 1))
        out[start:start + period] = line[: n - start]
        line = block
    return out.float()


def melody() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    total = sum(b for _, b in TUNE) * BEAT + 1.0
    out = torch.zeros(round(total * RATE))
    t = 0.0
    for note, beats in TUNE:
        freq = 440.0 * 2 ** ((note - 69) / 12)
        length = beats * BEAT + 0.6  # let the string ring into the next note
        tone = pluck(freq, length, generator)
        time = torch.arange(tone.numel()) / RATE
        bass = 0.25 * torch.sin(2 * torch.pi * freq / 2 * time) * torch.exp(-3 * time)
        start = round(t * RATE)
        out[start:start + tone.numel()] += (tone + bass)[: out.numel() - start]
        t += beats * BEAT
    return out


def humpback() -> torch.Tensor:
    return audio.load(HUMPBACK)


def fit(wave: torch.Tensor, seconds: float) -> torch.Tensor:
    n = round(seconds * RATE)
    wave = torch.nn.functional.pad(wave[:n], (0, max(0, n - wave.numel())))
    return wave * (0.7 / wave.abs().max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/audio"))
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, make in (("speech", speech), ("melody", melody), ("humpback", humpback)):
        path = audio.save(fit(make(), args.seconds), args.out / f"{name}.ogg")
        print(path, f"{path.stat().st_size / 1000:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

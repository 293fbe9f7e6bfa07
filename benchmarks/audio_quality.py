#!/usr/bin/env python3
"""`brushwork audio` presets side by side: wall time, the judge's distances and Griffin-Lim's convergence.

    python scripts/make_audio_examples.py --out out/audio              # the 10 s example clips
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/audio_quality.py --clips out/audio \\
        --variants default ulyanov ulyanov@default --out benchmarks/results/audio-quality

A variant is a preset name, optionally with settings changed (`default:iterations=60,widths=3+15`), or
`PRESET@OTHER`: PRESET stopped when its optimisation has used OTHER's measured wall time minus its own
Griffin-Lim time (Ctrl-C's path: the best spectrogram so far, then the full Griffin-Lim), i.e. at equal
time. The judge (brushwork.audio.distances) shares no network with either preset; a second judge's style
distance (width 21, another seed) checks that no preset was tuned to the first. Torch runs on one thread
unless --threads says otherwise; the machine's load average is recorded beside the times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from brushwork import audio  # noqa: E402

# a second judge, for a check that a preset was not tuned to the first one's width: long filters (rhythm)
CHECK = audio.SpectralConfig(bins=audio.JUDGE.bins, filters=2048, widths=(21,), seed=7)
PAIRS = [("speech", "humpback"), ("speech", "melody"), ("melody", "humpback"), ("humpback", "speech")]


def parse_variant(text: str) -> tuple[str, audio.AudioSettings, str | None]:
    """'name[:k=v,...][@other]' -> (label, settings, the variant whose time this one gets)."""
    base, _, budget = text.partition("@")
    name, _, changes = base.partition(":")
    options = {}
    for item in filter(None, changes.split(",")):
        key, value = item.split("=")
        field = audio.AudioSettings.__dataclass_fields__[key]
        kind = field.type if isinstance(field.type, str) else field.type.__name__
        if "tuple" in kind:
            options[key] = tuple(int(v) for v in value.split("+"))
        elif kind in ("int", "float", "bool"):
            options[key] = {"int": int, "float": float, "bool": lambda v: v == "1"}[kind](value)
        else:
            options[key] = value
    return text, audio.preset(name).with_(**options), budget or None


class Clock:
    """A callback that times each iteration and, given `seconds`, stops the optimisation (as Ctrl-C does)
    once they have passed."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds, self.start, self.ticks = seconds, time.perf_counter(), []

    def __call__(self, step) -> None:
        self.ticks.append(time.perf_counter())
        if self.seconds is not None and self.ticks[-1] - self.start >= self.seconds:
            raise KeyboardInterrupt

    def per_iteration(self) -> float:
        """Seconds per iteration after the first (which also pays for the set-up)."""
        if len(self.ticks) < 2:
            return float("nan")
        return (self.ticks[-1] - self.ticks[0]) / max(1, len(self.ticks) - 1)


def griffin_lim_seconds(settings: audio.AudioSettings, wave: torch.Tensor) -> float:
    start = time.perf_counter()
    magnitude = audio.stft(wave, settings.n_fft, settings.hop).abs()
    audio.griffin_lim(magnitude, settings.n_fft, settings.hop, wave.numel(), settings.griffin_lim, settings.momentum)
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=Path, default=Path("out/audio"))
    p.add_argument("--variants", nargs="+", default=["default", "ulyanov", "ulyanov@default"])
    p.add_argument("--pairs", nargs="+", help="content/style names, e.g. speech/humpback (default: four pairs)")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length used")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    p.add_argument("--keep", type=Path, help="folder to write each result's sound into")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pairs = [tuple(x.split("/")) for x in args.pairs] if args.pairs else PAIRS
    clips = {name: audio.load(args.clips / f"{name}.ogg")[: round(args.seconds * audio.RATE)]
             for pair in pairs for name in pair}
    variants = [parse_variant(v) for v in args.variants]
    rows = []
    for content, style in pairs:
        times: dict[str, float] = {}
        for label, settings, budget in variants:
            limit = None
            if budget is not None:
                limit = max(0.0, times[budget] - griffin_lim_seconds(settings, clips[content]))
            load = os.getloadavg()[0]
            start = time.perf_counter()
            callback = Clock(limit)
            result = audio.stylize(clips[content], clips[style], settings, seed=args.seed, callback=callback)
            seconds = time.perf_counter() - start
            times[label] = seconds
            d = audio.distances(result.wave, clips[content], clips[style])
            check = audio.distances(result.wave, clips[content], clips[style], judge=CHECK)
            row = {"content": content, "style": style, "variant": label, "seconds": round(seconds, 2),
                   "iterations": result.iterations, "per_iteration": round(callback.per_iteration(), 3),
                   # everything but the iterations: reading, targets, Griffin-Lim
                   "other_seconds": round(seconds - result.iterations * callback.per_iteration(), 2),
                   "judge_content": round(d.content, 4),
                   "judge_style": round(d.style, 4), "check_style": round(check.style, 4),
                   "spectral_convergence": round(result.spectral_convergence, 4),
                   "load": round(load, 2), "settings": {k: v for k, v in vars(settings).items()}}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "settings"}), flush=True)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                audio.save(result.wave, args.keep / f"{content}-{style}-{label.replace(':', '_')}.wav")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
        lines = [f"`{' '.join(sys.argv)}`, {args.seconds:g} s clips, {args.threads} thread(s)", "",
                 "| content | style | variant | seconds | iterations | s/iteration | judge content | judge style | "
                 "check style (width 21) | spectral convergence | load |",
                 "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['content']} | {r['style']} | `{r['variant']}` | {r['seconds']:.1f} | {r['iterations']} | "
                         f"{r['per_iteration']:.2f} | "
                         f"{r['judge_content']:.3f} | {r['judge_style']:.3f} | {r['check_style']:.3f} | "
                         f"{r['spectral_convergence']:.3f} | "
                         f"{r['load']:.1f} |")
        args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Sound in the style of another sound (Ulyanov & Lebedev 2016, neural-style-audio).

The log-magnitude spectrogram log(1 + |STFT|) is the variable: its frequency bins are the channels of a
random shallow network (nets/spectral.py); the content term holds the network's features near the
content's, the style term its Gram matrices near the style's (losses.py's terms), fitted by the same
loop as pictures (optimise.descend). A waveform is then rebuilt from the magnitude by Griffin-Lim,
optionally with momentum (Perraudin, Balazs & Søndergaard 2013) and from the content's phase.

Sound everywhere in brushwork.audio: float32 tensors of shape (samples,), mono, -1..1, at `rate` Hz.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from . import images
from .errors import BrushworkError, OptionError
from .losses import ContentTerm, StyleTerm, Term, style_targets
from .nets.spectral import SpectralConfig, SpectralNet
from .optimise import Step, descend, keep_best
from .perceptual import pick_device
from .presets import RANGES, Config, check_range

RATE = 22_050  # Hz: the runs' default rate (neural-style-audio's and librosa's)
MAX_SECONDS = 300.0  # longest clip read: a 10 s clip takes about a minute with the defaults
FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}  # what `save` writes (soundfile)


class AudioError(BrushworkError, ValueError):
    """A user-facing problem with a sound file: the message names the file and what to do."""


@dataclass(frozen=True)
class AudioSettings:
    """Every knob of a sound run; presets are named AudioSettings (jobs are data)."""

    rate: int = RATE
    n_fft: int = 2048
    hop: int = 512
    filters: int = 4096
    widths: tuple[int, ...] = (11,)
    net_seed: int = 0
    content_weight: float = 1e-2
    style_weight: float = 1.0
    # "absolute": neural-style-audio's sums, w_c ||F - Fc||^2 + w_s ||G - Gs||^2 (G = F F^T / T);
    # "relative": each divided by its target's ||.||^2, as the picture presets' terms
    loss_form: str = "absolute"
    init: str = "noise"  # noise (neural-style-audio's 1e-3 N(0, 1)) or content
    iterations: int = 300  # neural-style-audio's L-BFGS-B maxiter
    optimizer: str = "lbfgs"
    lr: float = 1.0
    history: int = 20
    balance: bool = False
    griffin_lim: int = 500
    momentum: float = 0.0  # 0: classic Griffin-Lim; 0.99: fast Griffin-Lim (Perraudin et al. 2013)
    phase: str = "random"  # where Griffin-Lim starts: random, or the content's phase

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in RANGES:  # presets.RANGES: one table for every numeric setting
                check_range(f.name, getattr(self, f.name))
        if self.hop > self.n_fft:
            raise OptionError(f"hop {self.hop} must be at most n_fft {self.n_fft}")
        for name, allowed in (("loss_form", ("absolute", "relative")), ("init", ("noise", "content")),
                              ("phase", ("random", "content")), ("optimizer", ("lbfgs", "adam", "gd"))):
            if getattr(self, name) not in allowed:
                raise OptionError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")

    # a copy with `changes`; None leaves a field as it is (the picture settings' own method, on any dataclass)
    with_ = Config.with_

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1


# Ulyanov & Lebedev's recipe as the issue states it: n_fft 2048, log1p magnitude, bins as channels,
# 4096 random filters of width 11, ReLU, content weight 1e-2, L-BFGS from noise, 500 Griffin-Lim iterations.
ULYANOV = AudioSettings()
# Chosen by benchmarks/audio_quality.py (README, "Stylise a sound"): two banks of 512 filters (short:
# timbre, long: notes), losses relative to their targets, started from the content's spectrogram, and
# fast Griffin-Lim from the content's phase; 50 iterations keep a 10 s clip under a minute here.
DEFAULT = ULYANOV.with_(filters=512, widths=(3, 15), loss_form="relative", content_weight=1.0,
                        init="content", iterations=50, griffin_lim=100, momentum=0.99, phase="content")
PRESETS = {"default": DEFAULT, "ulyanov": ULYANOV}


def preset(name: str) -> AudioSettings:
    if name not in PRESETS:
        raise OptionError(f"unknown audio preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


# --- reading and writing ---------------------------------------------------------------------------

def load(source: str | os.PathLike, rate: int = RATE, max_seconds: float = MAX_SECONDS) -> torch.Tensor:
    """Read a sound file as mono float32 at `rate` Hz: WAV, FLAC, OGG (and more) through soundfile, any
    other format ffmpeg reads (MP3, M4A, ...) through ffmpeg where it is installed. Stereo is averaged."""
    path = Path(source)
    if not path.exists():
        raise AudioError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not a sound file")
    try:
        wave, native = _read_soundfile(path, max_seconds)
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - libsndfile refuses non-audio and formats it lacks alike
        decoded = _read_ffmpeg(path, rate, max_seconds)
        if decoded is None:
            raise AudioError(f"{path}: not a sound file brushwork can read ({_one_line(exc)}); use WAV, "
                             f"FLAC or OGG, or install ffmpeg (pip install 'brushwork[video]') for MP3") from None
        wave, native = decoded, rate
    if wave.numel() == 0:
        raise AudioError(f"{path}: holds no samples (an empty recording); choose another file")
    if not torch.isfinite(wave).all():
        raise AudioError(f"{path}: holds NaN or infinite samples; re-export it")
    return resample(wave, native, rate)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def _too_long(path: Path, seconds: float, max_seconds: float) -> AudioError:
    return AudioError(f"{path}: {seconds:.0f} s long, more than the {max_seconds:.0f} s brushwork stylises at "
                      f"once; cut it first (e.g. ffmpeg -i {path.name} -t {max_seconds:.0f} short.wav)")


def _soundfile():
    try:
        import soundfile
    except ImportError:
        raise AudioError("sound needs the soundfile package: pip install 'brushwork[audio]'") from None
    return soundfile


def _read_soundfile(path: Path, max_seconds: float) -> tuple[torch.Tensor, int]:
    with _soundfile().SoundFile(path) as f:
        if f.samplerate <= 0:
            raise AudioError(f"{path}: sample rate {f.samplerate} Hz; the file is damaged")
        if f.frames > max_seconds * f.samplerate:
            raise _too_long(path, f.frames / f.samplerate, max_seconds)
        data = f.read(dtype="float32", always_2d=True)
    return torch.from_numpy(data).mean(1), f.samplerate


def _read_ffmpeg(path: Path, rate: int, max_seconds: float) -> torch.Tensor | None:
    """Decode with ffmpeg to mono float32 at `rate`; None if ffmpeg is missing or cannot read the file."""
    exe = _ffmpeg()
    if exe is None:
        return None
    # one sample past the cap tells a clip that is too long from one that just fits
    cmd = [exe, "-v", "error", "-nostdin", "-i", str(path), "-t", f"{max_seconds + 1.0 / rate:.6f}",
           "-vn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"]
    done = subprocess.run(cmd, capture_output=True, check=False)
    if done.returncode != 0:
        return None
    wave = torch.from_numpy(np.frombuffer(done.stdout, dtype="<f4").copy())
    if wave.numel() > max_seconds * rate:
        raise _too_long(path, wave.numel() / rate, max_seconds)
    return wave


def _ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return shutil.which("ffmpeg")


def resample(wave: torch.Tensor, rate_in: int, rate_out: int) -> torch.Tensor:
    """Band-limited resampling: the spectrum cut (or zero-padded) at the lower Nyquist frequency, the ideal
    low-pass (scipy.signal.resample's method, here in torch). The clip is mirrored first so the FFT's wrap
    joins it to itself smoothly instead of end to start."""
    if rate_in == rate_out:
        return wave
    n = wave.numel()
    mirrored = torch.cat([wave, wave.flip(0)]).double()
    n_out = round(2 * n * rate_out / rate_in)
    spectrum = torch.fft.rfft(mirrored)
    out = torch.fft.irfft(spectrum[: n_out // 2 + 1], n_out) * (n_out / (2 * n))
    return out[: round(n * rate_out / rate_in)].float()


def check_output(path: str | os.PathLike) -> Path:
    """Fail before any work if the sound cannot be written: folder and format."""
    path = images.check_folder(path)
    if path.suffix.lower() not in FORMATS:
        raise AudioError(f"{path}: the output must be {', '.join(FORMATS)}, not {path.suffix or 'no extension'!r}")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder; choose a file name such as out.wav")
    return path


def save(wave: torch.Tensor, path: str | os.PathLike, rate: int = RATE) -> Path:
    """Write atomically (images.write_atomic): a full disk or Ctrl-C never leaves a partial file."""
    soundfile = _soundfile()
    path = check_output(path)
    data = wave.detach().float().clamp(-1, 1).cpu().numpy()
    fmt = FORMATS[path.suffix.lower()]
    subtype = "PCM_16" if fmt == "WAV" else None
    return images.write_atomic(path, lambda fh: soundfile.write(fh, data, rate, format=fmt, subtype=subtype))


# --- spectrograms ---------------------------------------------------------------------------------

def stft(wave: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(bins, frames) complex STFT with a Hann window, frames centred on multiples of `hop`."""
    window = torch.hann_window(n_fft, device=wave.device)
    return torch.stft(wave, n_fft, hop, window=window, center=True, return_complex=True)


def istft(spec: torch.Tensor, n_fft: int, hop: int, length: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=spec.device)
    return torch.istft(spec, n_fft, hop, window=window, center=True, length=length)


def log_magnitude(wave: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """log(1 + |STFT|), (bins, frames): neural-style-audio's representation."""
    return torch.log1p(stft(wave, n_fft, hop).abs())


def griffin_lim(magnitude: torch.Tensor, n_fft: int, hop: int, length: int, iterations: int,
                momentum: float = 0.0, phase: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """A waveform whose STFT magnitude is near `magnitude` (Griffin & Lim 1984).

    momentum > 0 is the fast algorithm of Perraudin et al. 2013 (0.99 is their choice); `phase` (unit
    complex, e.g. the content's) starts it, else a random phase.
    """
    if phase is None:
        angles = torch.rand(magnitude.shape, generator=generator) * (2 * math.pi)
        phase = torch.polar(torch.ones_like(angles), angles).to(magnitude.device)
    previous = torch.zeros_like(phase)
    for _ in range(iterations):
        rebuilt = stft(istft(magnitude * phase, n_fft, hop, length), n_fft, hop)
        phase = rebuilt - previous * (momentum / (1 + momentum))
        phase = phase / (phase.abs() + 1e-16)
        previous = rebuilt
    return istft(magnitude * phase, n_fft, hop, length)


def spectral_convergence(wave: torch.Tensor, magnitude: torch.Tensor, n_fft: int, hop: int) -> float:
    """|| |STFT(wave)| - magnitude || / ||magnitude||: how far the rebuilt sound is from the spectrogram
    it was rebuilt from (0 = exactly; Sturmel & Daudet 2011)."""
    diff = stft(wave, n_fft, hop).abs() - magnitude
    return (diff.norm() / magnitude.norm().clamp_min(1e-12)).item()


# --- the criterion ---------------------------------------------------------------------------------

class SoundCriterion:
    """The random network and the weighted content and style terms on log-magnitude spectrograms (1, bins, T).

    `evaluate` has perceptual.Perceptual's shape, so optimise.descend fits a spectrogram as it fits pixels.
    """

    def __init__(self, config: SpectralConfig, device: str | torch.device | None = "cpu") -> None:
        self.device = pick_device(device)
        self.net = SpectralNet(config).to(self.device)

    def features(self, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(spec.to(self.device).float())

    def content_term(self, content: torch.Tensor) -> ContentTerm:
        with torch.no_grad():
            return ContentTerm(self.features(content), form="relative")

    def style_term(self, style: torch.Tensor) -> StyleTerm:
        with torch.no_grad():
            return StyleTerm(style_targets([self.features(style)], [1.0], "relative"), form="relative")

    def terms(self, content: torch.Tensor, style: torch.Tensor, settings: AudioSettings) -> list[tuple[Term, float]]:
        content_term, style_term = self.content_term(content), self.style_term(style)
        wc, ws = settings.content_weight, settings.style_weight
        if settings.loss_form == "absolute":  # relative error x ||target||^2 = the plain sum of squares
            wc *= sum(t.pow(2).sum().item() for t in content_term.targets.values())
            ws *= sum(t.pow(2).sum().item() for t in style_term.targets.values())
        return [(content_term, wc), (style_term, ws)]

    def evaluate(self, x: torch.Tensor, terms: Sequence[tuple[Term, float]]) -> dict[str, torch.Tensor]:
        feats = self.features(x)
        return {term.name: term(feats, x) for term, _ in terms}


# --- the run ---------------------------------------------------------------------------------------

@dataclass
class AudioResult:
    wave: torch.Tensor  # (samples,) at `rate`
    rate: int
    spectrogram: torch.Tensor  # the optimised log magnitude (bins, frames)
    iterations: int
    interrupted: bool
    seconds: float
    spectral_convergence: float  # of the rebuilt waveform against the optimised magnitude
    history: list[dict[str, float]] = field(default_factory=list)


SoundInput = "str | os.PathLike | torch.Tensor"


def _as_wave(source: SoundInput, rate: int) -> torch.Tensor:
    """A path is read (and resampled); a tensor is taken as mono samples already at `rate`."""
    if isinstance(source, torch.Tensor):
        return source.detach().float().flatten()
    return load(source, rate)


def _check_length(wave: torch.Tensor, source: SoundInput, name: str, n_fft: int, rate: int) -> None:
    """The STFT pads each end by n_fft/2 samples by reflection, which needs a longer clip than that."""
    if wave.numel() <= n_fft // 2:
        where = "" if isinstance(source, torch.Tensor) else f"{source}: "
        raise AudioError(f"{where}the {name} clip is {1000 * wave.numel() / rate:.0f} ms long; "
                         f"give a clip longer than {1000 * (n_fft // 2) / rate:.0f} ms")


def stylize(content: SoundInput, style: SoundInput, settings: AudioSettings = DEFAULT, *,
            seed: int | None = None, callback: Callable[[Step], None] | None = None,
            device: str | torch.device | None = "cpu") -> AudioResult:
    """`content` in the style of `style`; returns the result (also after Ctrl-C during the fit: the best so far).

    >>> r = stylize("speech.wav", "whale.ogg")
    >>> save(r.wave, "out.wav", r.rate)
    """
    s = settings
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**63)
    wave_c, wave_s = _as_wave(content, s.rate), _as_wave(style, s.rate)
    _check_length(wave_c, content, "content", s.n_fft, s.rate)
    _check_length(wave_s, style, "style", s.n_fft, s.rate)
    complex_c = stft(wave_c, s.n_fft, s.hop)
    spec_c = torch.log1p(complex_c.abs())[None]
    spec_s = log_magnitude(wave_s, s.n_fft, s.hop)[None]
    criterion = SoundCriterion(SpectralConfig(s.bins, s.filters, s.widths, s.net_seed), device)
    terms = criterion.terms(spec_c, spec_s, s)
    if s.init == "content":
        x = spec_c.clone()
    else:
        x = torch.randn(spec_c.shape, generator=generator) * 1e-3
    history: list[dict[str, float]] = []

    def record(step: Step) -> None:
        history.append({"loss": step.loss, **step.losses})
        if callback is not None:
            step.iteration, step.total = len(history), s.iterations
            callback(step)

    # the log magnitude is at least 0 (log1p of |.|), unbounded above
    best, interrupted, _ = keep_best(descend(criterion, x.to(criterion.device), terms, s.iterations, s, bounds=(0, None)),
                                  s.balance, record)
    spec = (best if best is not None else x)[0].cpu()
    magnitude = torch.expm1(spec)
    phase = complex_c / complex_c.abs().clamp_min(1e-12) if s.phase == "content" else None
    if phase is not None:
        phase = torch.where(complex_c.abs() > 0, phase, torch.ones_like(phase))  # silence: phase 0
    wave = griffin_lim(magnitude, s.n_fft, s.hop, wave_c.numel(), s.griffin_lim,
                       s.momentum, phase, generator)
    convergence = spectral_convergence(wave, magnitude, s.n_fft, s.hop)
    wave = _no_clipping(wave)
    return AudioResult(wave, s.rate, spec, len(history), interrupted, time.perf_counter() - start, convergence,
                       history)


def _no_clipping(wave: torch.Tensor) -> torch.Tensor:
    """Scaled down below full scale only if it would clip: the optimised magnitude sets the level, and the
    log spectrogram (hence the judge) depends on it."""
    peak = wave.abs().max()
    return wave * (0.99 / peak) if peak > 0.99 else wave


# --- pictures --------------------------------------------------------------------------------------

# a dark-to-bright colour map (black, purple, red, orange, pale yellow), enough to read a spectrogram
_COLOURS = torch.tensor([[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]],
                        dtype=torch.float32)


def spectrogram_picture(waves: Sequence[tuple[str, torch.Tensor]], rate: int = RATE, height: int = 256,
                        n_fft: int = 2048, hop: int = 256) -> Image.Image:
    """Labelled log-magnitude spectrograms side by side (e.g. content | style | result): time across,
    frequency up on a logarithmic axis from 40 Hz to Nyquist, one brightness scale for all panels."""
    specs = [log_magnitude(w, n_fft, hop) for _, w in waves]
    top = max(float(sp.max()) for sp in specs) or 1.0
    freqs = 40.0 * (rate / 2 / 40.0) ** torch.linspace(1, 0, height)  # top row: Nyquist
    rows = (freqs / (rate / n_fft)).clamp(0, n_fft // 2)
    low = rows.floor().long().clamp(max=n_fft // 2 - 1)
    frac = (rows - low)[:, None]
    panels = []
    for (label, _), sp in zip(waves, specs):
        level = ((sp[low] * (1 - frac) + sp[low + 1] * frac) / top).clamp(0, 1)  # (height, frames)
        pos = level * (len(_COLOURS) - 1)
        i = pos.floor().long().clamp(max=len(_COLOURS) - 2)
        t = (pos - i)[..., None]
        rgb = _COLOURS[i] * (1 - t) + _COLOURS[i + 1] * t
        panel = Image.fromarray(rgb.round().byte().numpy(), "RGB")
        panel = panel.resize((min(panel.width, 600), height), Image.LANCZOS)
        ImageDraw.Draw(panel).text((6, 4), label, fill=(255, 255, 255))
        panels.append(panel)
    gap = 6
    sheet = Image.new("RGB", (sum(p.width for p in panels) + gap * (len(panels) - 1), height), (255, 255, 255))
    x = 0
    for panel in panels:
        sheet.paste(panel, (x, 0))
        x += panel.width + gap
    return sheet


# --- the judge -------------------------------------------------------------------------------------

# A network the optimiser never sees: another seed and a kernel width neither preset uses.
JUDGE = SpectralConfig(bins=2048 // 2 + 1, filters=2048, widths=(5,), seed=20_161_110)
JUDGE_N_FFT, JUDGE_HOP = 2048, 512


@dataclass(frozen=True)
class SoundDistances:
    content: float  # relative squared distance of log spectrograms to the content's
    style: float  # relative Gram distance to the style's on the judge's random network

    def __str__(self) -> str:
        return f"content {self.content:.3f}  style {self.style:.3f}"


@lru_cache(maxsize=2)
def _judge(config: SpectralConfig) -> SoundCriterion:
    return SoundCriterion(config)


def distances(output: SoundInput, content: SoundInput, style: SoundInput, rate: int = RATE,
              judge: SpectralConfig = JUDGE) -> SoundDistances:
    """The judge: content = ||L(out) - L(content)||^2 / ||L(content)||^2 on log1p magnitudes L (n_fft 2048,
    hop 512; the content cut or padded to the output's length), style = the relative Gram distance on
    `judge`, a random network with its own seed and width (`JUDGE`; the benchmark checks a second one)."""
    out, c, s = (_as_wave(x, rate) for x in (output, content, style))
    c = torch.nn.functional.pad(c[: out.numel()], (0, max(0, out.numel() - c.numel())))
    spec_o, spec_c, spec_s = (log_magnitude(w, JUDGE_N_FFT, JUDGE_HOP)[None] for w in (out, c, s))
    net = _judge(judge)
    with torch.no_grad():
        content_d = ((spec_o - spec_c).pow(2).sum() / spec_c.pow(2).sum().clamp_min(1e-12)).item()
        style_d = net.evaluate(spec_o, [(net.style_term(spec_s), 1.0)])["style"].item()
    return SoundDistances(content_d, style_d)


def is_sound_file(path: str | os.PathLike) -> bool:
    """Whether `path` names a sound by its extension (what `brushwork evaluate` dispatches on)."""
    return Path(path).suffix.lower() in {*FORMATS, ".mp3", ".m4a", ".aac", ".opus", ".aiff", ".aif"}


__all__ = ["AudioError", "AudioResult", "AudioSettings", "DEFAULT", "ULYANOV", "PRESETS", "load", "save",
           "stylize", "distances", "griffin_lim", "resample", "SoundCriterion"]

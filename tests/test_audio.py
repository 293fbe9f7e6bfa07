"""`brushwork audio` at tiny sizes: a second of sound, a few iterations, small random networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

soundfile = pytest.importorskip("soundfile")

from brushwork import audio  # noqa: E402
from brushwork.cli import main  # noqa: E402
from brushwork.losses import gram  # noqa: E402

RATE = audio.RATE
TINY = audio.DEFAULT.with_(filters=16, iterations=3, griffin_lim=4)


def tone(freq: float, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wave: torch.Tensor, rate: int = RATE) -> float:
    spectrum = torch.fft.rfft(wave.double()).abs()
    return spectrum.argmax().item() * rate / wave.numel()


@pytest.fixture
def clips(tmp_path):
    """A 1 s content (two tones) and style (a chirp), as WAV."""
    t = np.arange(RATE) / RATE
    content = tone(440) + tone(660) * 0.5
    style = (0.4 * np.sin(2 * np.pi * (200 + 800 * t) * t)).astype(np.float32)
    paths = tmp_path / "content.wav", tmp_path / "style.wav"
    soundfile.write(paths[0], content, RATE)
    soundfile.write(paths[1], style, RATE)
    return paths


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# --- reading and writing ---------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_stereo_at_another_rate_becomes_mono_at_the_run_rate(tmp_path, suffix) -> None:
    left, right = tone(440, rate=44_100), tone(440, rate=44_100)
    path = tmp_path / f"in{suffix}"
    soundfile.write(path, np.stack([left, right], 1), 44_100)
    wave = audio.load(path)
    assert wave.shape == (RATE,)
    assert abs(peak_hz(wave) - 440) < 2


def test_resampling_removes_what_the_new_rate_cannot_hold() -> None:
    both = torch.from_numpy(tone(1000, rate=48_000) + tone(15_000, rate=48_000))
    out = audio.resample(both, 48_000, RATE)  # 15 kHz is above the new Nyquist frequency (11,025 Hz)
    spectrum = torch.fft.rfft(out.double()).abs()
    assert out.numel() == RATE
    assert abs(peak_hz(out) - 1000) < 2
    assert spectrum.max() > 1000 * spectrum[round(11_025 - 15_000 + 11_025)]  # no alias at 7,050 Hz


@pytest.mark.parametrize("suffix, codec", [(".m4a", "aac"), (".mp3", "libmp3lame")])
def test_compressed_formats_are_read(tmp_path, suffix, codec) -> None:
    """MP3 through libsndfile where it has it, else (and M4A always) through ffmpeg."""
    import subprocess

    exe = audio._ffmpeg()
    if exe is None:
        pytest.skip("no ffmpeg")
    wav, encoded = tmp_path / "in.wav", tmp_path / f"in{suffix}"
    soundfile.write(wav, tone(440, rate=44_100), 44_100)
    subprocess.run([exe, "-v", "error", "-i", str(wav), "-c:a", codec, str(encoded)], check=True)
    wave = audio.load(encoded)
    assert abs(wave.numel() - RATE) < RATE * 0.05 and abs(peak_hz(wave) - 440) < 3


def test_save_writes_each_format_and_leaves_no_partial_file(tmp_path) -> None:
    wave = torch.from_numpy(tone(440))
    for suffix in (".wav", ".flac", ".ogg"):
        path = audio.save(wave, tmp_path / f"out{suffix}")
        assert soundfile.info(path).samplerate == RATE
    with pytest.raises(audio.AudioError, match="must be .wav"):
        audio.save(wave, tmp_path / "out.mp3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.flac", "out.ogg", "out.wav"]


# --- the method ------------------------------------------------------------------------------------

def test_ulyanov_preset_is_the_issue_recipe() -> None:
    u = audio.preset("ulyanov")
    assert (u.n_fft, u.filters, u.widths, u.content_weight, u.griffin_lim, u.optimizer, u.init) == \
        (2048, 4096, (11,), 1e-2, 500, "lbfgs", "noise")


def test_absolute_form_is_neural_style_audios_sum_of_squares() -> None:
    settings = audio.ULYANOV.with_(filters=8, n_fft=64, hop=16)
    criterion = audio.SoundCriterion(audio.SpectralConfig(settings.bins, 8, (11,), 0))
    content, style, x = (torch.rand(1, settings.bins, 30, generator=torch.Generator().manual_seed(i)) for i in range(3))
    terms = criterion.terms(content, style, settings)
    values = criterion.evaluate(x, terms)
    ours = sum(w * values[t.name] for t, w in terms)
    f, fc, fs = (criterion.features(v)["width11"] for v in (x, content, style))
    theirs = 1e-2 * (f - fc).pow(2).sum() + (gram(f) - gram(fs)).pow(2).sum()  # G = F F^T / T
    assert torch.allclose(ours, theirs, rtol=1e-4)


def test_griffin_lim_momentum_and_content_phase_rebuild_better() -> None:
    wave = torch.from_numpy(tone(300) + tone(1234) * 0.3) * torch.linspace(0, 1, RATE)
    spec = audio.stft(wave, 512, 128)
    mag, n = spec.abs(), wave.numel()

    def convergence(momentum: float, phase=None) -> float:
        rebuilt = audio.griffin_lim(mag, 512, 128, n, 30, momentum, phase, torch.Generator().manual_seed(0))
        return audio.spectral_convergence(rebuilt, mag, 512, 128)

    assert convergence(0.99) < convergence(0.0)
    assert convergence(0.0, spec / spec.abs().clamp_min(1e-12)) < 1e-3  # its own phase: exact


def test_stylize_lowers_the_loss_and_keeps_the_length(clips) -> None:
    result = audio.stylize(*clips, TINY.with_(iterations=6), seed=0)
    assert result.wave.shape == (RATE,) and torch.isfinite(result.wave).all()
    assert result.history[-1]["loss"] < result.history[1]["loss"]
    assert 0 <= result.spectral_convergence < 1 and not result.interrupted


def test_ctrl_c_keeps_the_best_spectrogram_and_still_rebuilds_the_sound(clips) -> None:
    def stop(step) -> None:
        if step.iteration == 2:
            raise KeyboardInterrupt

    result = audio.stylize(*clips, TINY.with_(iterations=50), seed=0, callback=stop)
    assert result.interrupted and result.iterations == 2 and result.wave.shape == (RATE,)


@pytest.mark.parametrize("silent", ["content", "style", "both"])
def test_silence_gives_a_finite_result(clips, silent) -> None:
    zero = torch.zeros(RATE)
    content = zero if silent in ("content", "both") else clips[0]
    style = zero if silent in ("style", "both") else clips[1]
    result = audio.stylize(content, style, TINY, seed=0)
    assert torch.isfinite(result.wave).all() and all(math.isfinite(v) for h in result.history for v in h.values())
    d = audio.distances(result.wave, content, style)
    assert math.isfinite(d.content) and math.isfinite(d.style)


def test_the_judge_measures_against_each_input(clips) -> None:
    content, style = (audio.load(p) for p in clips)
    on_content = audio.distances(content, content, style)
    on_style = audio.distances(style, content, style)
    assert on_content.content == 0 and on_content.style > 0.1
    assert on_style.style < 1e-6 and on_style.content > 0.1


# --- the command line ------------------------------------------------------------------------------

def test_cli_writes_the_sound_and_the_spectrogram_picture(tmp_path, clips, capsys) -> None:
    out, picture = tmp_path / "out.flac", tmp_path / "spec.png"
    assert main(["audio", str(clips[0]), "--style", str(clips[1]), "-o", str(out), "--iterations", "2",
                 "--spectrogram", str(picture), "--seed", "0", "-q"]) == 0
    assert soundfile.info(out).frames == RATE
    assert Image.open(picture).size[1] == 256
    assert main(["evaluate", str(out), "--content", str(clips[0]), "--style", str(clips[1])]) == 0
    assert "content" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--content", str(clips[0]), "--style", str(clips[1]), "--layers"]) == 1
    assert "--layers is for images" in capsys.readouterr().err


def test_demo_audio(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--audio", "--iterations", "1", "-q"]) == 0
    assert soundfile.info(tmp_path / "brushwork-demo.wav").duration == pytest.approx(4.0, abs=0.01)


def _bad_inputs(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not a sound at all\n" * 50)
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    no_samples = tmp_path / "no_samples.wav"
    soundfile.write(no_samples, np.zeros(0, dtype=np.float32), RATE)
    long = tmp_path / "long.wav"
    soundfile.write(long, np.zeros(round(4000 * (audio.MAX_SECONDS + 1)), dtype=np.int16), 4000)
    return {"not audio": (text, "not a sound file"), "empty": (empty, "not a sound file"),
            "zero-length": (no_samples, "no samples"), "too long": (long, "more than the 300 s")}


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, clips, capsys) -> None:
    out = tmp_path / "out.wav"
    for name, (path, message) in _bad_inputs(tmp_path).items():
        for content, style in ((path, clips[1]), (clips[0], path)):
            code = main(["audio", str(content), "--style", str(style), "-o", str(out), "-q"])
            line = one_error_line(capsys)
            assert code == 1 and message in line and str(path) in line, (name, line)
    assert not out.exists() and not list(tmp_path.glob(".out.wav*"))


@pytest.mark.parametrize("output, message", [("missing/out.wav", "does not exist"), ("out.mp3", "must be .wav"),
                                             ("content.wav", "is also an input")])
def test_unwritable_outputs_are_refused_before_any_work(tmp_path, clips, capsys, monkeypatch, output,
                                                        message) -> None:
    monkeypatch.setattr(audio, "stylize", lambda *a, **k: pytest.fail("started"))
    code = main(["audio", str(clips[0]), "--style", str(clips[1]), "-o", str(tmp_path / output), "-q"])
    assert code == 1 and message in one_error_line(capsys)


def test_settings_out_of_range_are_refused(clips, capsys) -> None:
    from brushwork.errors import OptionError

    for change in ({"momentum": 1.5}, {"widths": (3, 0)}, {"hop": 4096}, {"phase": "zero"}):
        with pytest.raises(OptionError):
            audio.DEFAULT.with_(**change)
    with pytest.raises(SystemExit):
        main(["audio", str(clips[0]), "--style", str(clips[1]), "--rate", "100"])
    assert "rate" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["content", "style"])
def test_a_clip_shorter_than_half_the_window_is_one_error_naming_it(tmp_path, clips, which) -> None:
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(500, dtype=np.float32), RATE)
    content, style = (short, clips[1]) if which == "content" else (clips[0], short)
    with pytest.raises(audio.AudioError, match=f"{short}: the {which} clip is 23 ms long; give a clip longer"):
        audio.stylize(content, style)
    waves = (torch.randn(500), torch.randn(RATE)) if which == "content" else (torch.randn(RATE), torch.randn(500))
    with pytest.raises(audio.AudioError, match=f"^the {which} clip is 23 ms"):
        audio.stylize(*waves)


def test_demo_audio_refuses_image_options_before_any_work(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(audio, "stylize", lambda *a, **k: pytest.fail("started"))
    assert main(["demo", "--audio", "--size", "64", "--preset", "subtle", "--pyramid", "", "-q"]) == 1
    line = one_error_line(capsys)
    assert "--preset, --size, --pyramid shape an image" in line and "brushwork audio CONTENT --style STYLE" in line
    assert not list(tmp_path.iterdir())

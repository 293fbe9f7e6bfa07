"""Instant styles: training on the shared criterion, model files, inference, resume, the CLI's errors."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from brushwork import images
from brushwork.cli import main
from brushwork.feedforward import modelfile
from brushwork.feedforward.infer import InstantStylizer, stylize_tensor
from brushwork.feedforward.train import TrainSettings, train, work_folder
from brushwork.nets.transformer import TransformerConfig, TransformerNet

TINY = TrainSettings(steps=4, batch=1, crop=64, style_size=64, width=8, blocks=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, photos, style_path) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("model") / "m.safetensors"
    result = train([style_path], photos, out, TINY, checkpoint_every=100)
    assert result.steps == TINY.steps and [p.name for p in result.skipped] == ["broken.jpg"]
    return out, result.history


def test_a_few_steps_at_64_px_lower_the_loss(trained) -> None:
    _, history = trained
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]


def test_model_file_round_trip_and_header(trained, style_path) -> None:
    import brushwork

    path, _ = trained
    model = modelfile.load_model(path)
    h = model.header
    assert h["format"] == modelfile.FORMAT and h["arch"] == "johnson" and h["brushwork"] == brushwork.__version__
    assert h["config"] == {"width": 8, "blocks": 1}
    style = images.load(style_path)
    assert h["styles"][0]["name"] == style_path.name
    assert h["styles"][0]["sha256"] == hashlib.sha256(style.tobytes()).hexdigest()
    thumb = Image.open(io.BytesIO(base64.b64decode(h["styles"][0]["thumbnail_jpeg"])))
    assert thumb.format == "JPEG" and max(thumb.size) == modelfile.THUMBNAIL_SIDE
    assert h["training"]["steps_done"] == TINY.steps and h["training"]["crop"] == 64
    assert h["training"]["skip"] is False and h["training"]["content_weight"] == 4.0  # the bundled recipe
    assert all(t.dtype == torch.float16 for t in load_file(path).values())  # stored small


def test_skip_network_adds_the_photo_and_both_architectures_load(tmp_path, content_path) -> None:
    x = images.to_tensor(images.fit(images.load(content_path), 64))[..., :40, :]  # sides multiples of 4
    plain, skip = TransformerNet(TransformerConfig(8, 1)), TransformerNet(TransformerConfig(8, 1, skip=True))
    skip.load_state_dict(plain.state_dict())
    assert torch.allclose(skip(x), x + plain(x), atol=1e-3)
    for skip in (False, True):  # a plain network (older files) and a skip one round-trip with their arch
        net = TransformerNet(TransformerConfig(8, 1, skip=skip))
        path = modelfile.save_model(net, tmp_path / f"{skip}.safetensors", styles=[{"name": "s"}], training={})
        model = modelfile.load_model(path)
        assert model.net.config == net.config and model.header["arch"] == ("johnson-skip" if skip else "johnson")


def test_inference_keeps_any_size_and_clean_borders() -> None:
    """A flat grey photo must come out flat, borders included: zero padding would darken the frame."""
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(width=8, blocks=1)).eval()
    for w, h in [(5, 7), (37, 23), (101, 64), (1, 9)]:
        out = stylize_tensor(net, torch.full((1, 3, h, w), 120.0))
        assert out.shape == (1, 3, h, w)
        assert (out - out[..., h // 2, w // 2][..., None, None]).abs().max() < 1e-3, (w, h)


def test_instant_stylizer_is_loaded_once_and_applied_to_many(trained, content_path) -> None:
    path, _ = trained
    paint = InstantStylizer(path, precision="float32")
    a = paint(content_path, 64)
    b = paint(images.load(content_path).transpose(Image.FLIP_LEFT_RIGHT), 64)
    assert a.size == b.size == (64, 43)
    # float16 storage changes the output by well under a level
    net = TransformerNet(paint.model.net.config)
    net.load_state_dict(paint.model.net.state_dict())
    x = images.to_tensor(images.fit(images.load(content_path), 64))
    assert (paint.tensor(x) - stylize_tensor(net, x)).abs().mean() < 0.5


BUNDLED = sorted(modelfile.BUNDLED_DIR.glob(f"*{modelfile.SUFFIX}"))


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_models_are_small_float16_and_made_by_their_recorded_command(path) -> None:
    """The command the README and `models list` show for a bundled model asks for exactly the settings
    its header says it was trained with, and the run finished."""
    import shlex
    from dataclasses import asdict

    from brushwork.cli import parser, train_settings

    assert path.stat().st_size <= 4 * 1024 * 1024
    assert all(t.dtype == torch.float16 for t in load_file(path).values())
    h = modelfile.read(path)[0]
    assert h["arch"] == "johnson" and h["styles"][0]["thumbnail_jpeg"]
    command = shlex.split(h["recipe"]["command"])
    assert command[:2] == ["brushwork", "train"] and h["recipe"]["minutes"] > 0
    asked = asdict(train_settings(parser().parse_args(command[1:])))
    trained_with = {k: v for k, v in h["training"].items() if k not in ("steps_done", "style_blend")}
    assert trained_with == {k: v for k, v in asked.items() if k != "style_blend"}
    assert h["training"]["steps_done"] == asked["steps"]
    assert h["styles"][0]["name"] == Path(command[2]).name


def test_a_bundled_model_is_found_by_name_unless_the_user_has_one_so_named(tmp_path, monkeypatch, trained,
                                                                           content_path, capsys) -> None:
    monkeypatch.setenv(modelfile.ENV_MODELS, str(tmp_path))
    assert BUNDLED, "no bundled model in assets/models"
    name = BUNDLED[0].stem
    paint = InstantStylizer(name)
    assert paint.model.path == BUNDLED[0] and paint(content_path, 50).size == (50, 33)
    assert (name, "bundled") in [row[:2] for row in modelfile.list_models()]
    assert main(["models", "list"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert f"{paint.model.header['recipe']['minutes']:g} min" in listed[name] and "bundled" in listed[name]
    (tmp_path / BUNDLED[0].name).write_bytes(trained[0].read_bytes())
    assert modelfile.resolve(name) == tmp_path / BUNDLED[0].name
    assert [row[1] for row in modelfile.list_models() if row[0] == name] == ["user"]


def test_resume_after_an_interruption_matches_an_unbroken_run(tmp_path, photos, style_path) -> None:
    settings = TINY.with_(steps=3)
    unbroken = train([style_path], photos, tmp_path / "a.safetensors", settings, checkpoint_every=100)

    def stop(step) -> None:
        if step.step == 2:
            raise KeyboardInterrupt

    out = tmp_path / "b.safetensors"
    first = train([style_path], photos, out, settings, checkpoint_every=100, callback=stop)
    assert first.interrupted and first.steps == 2
    assert (work_folder(out) / "checkpoint.pt").exists() and modelfile.load_model(out).header["training"]["steps_done"] == 2
    with pytest.raises(modelfile.ModelError, match="--resume"):
        train([style_path], photos, out, settings)
    resumed = train([style_path], photos, out, settings, resume=True)
    assert resumed.steps == 3 and not resumed.interrupted
    a, b = (modelfile.load_model(p).net.state_dict() for p in (unbroken.output, out))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_from_before_the_skip_setting_resumes_as_no_skip(tmp_path, photos, style_path) -> None:
    settings = TINY.with_(steps=2, skip=False)

    def stop(step) -> None:
        if step.step == 1:
            raise KeyboardInterrupt

    out = tmp_path / "old.safetensors"
    assert train([style_path], photos, out, settings, checkpoint_every=100, callback=stop).interrupted
    checkpoint = work_folder(out) / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    del state["settings"]["skip"]  # as written before the setting existed
    torch.save(state, checkpoint)
    with pytest.raises(modelfile.ModelError, match="other styles or settings"):  # those had no skip
        train([style_path], photos, out, settings.with_(skip=True), resume=True)
    resumed = train([style_path], photos, out, settings, resume=True)
    assert resumed.steps == 2 and not resumed.interrupted


def test_checkpoints_are_replaced_atomically(tmp_path, monkeypatch) -> None:
    path = tmp_path / "checkpoint.pt"
    modelfile.write_atomically(path, b"good")

    def crash(*args):
        raise OSError("killed mid-write")

    monkeypatch.setattr(modelfile.os, "replace", crash)
    with pytest.raises(OSError):
        modelfile.write_atomically(path, b"half")
    assert path.read_bytes() == b"good" and list(tmp_path.iterdir()) == [path]


# --- the CLI's errors: one line naming the file, exit 1, no output written ----------------------------

def _fails(argv: list[str], capsys, *needles: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def _with_header(src: Path, dest: Path, **changes) -> Path:
    header = {**modelfile.read(src)[0], **changes}
    save_file(load_file(src), dest, metadata={modelfile.HEADER_KEY: json.dumps(header)})
    return dest


def test_cli_model_file_errors(tmp_path, trained, content_path, capsys) -> None:
    model, _ = trained
    out = tmp_path / "out.png"
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(model.read_bytes()[:2000])
    foreign = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, foreign)
    cases = {
        str(tmp_path / "missing.safetensors"): "no such model file",
        str(truncated): "truncated",
        str(foreign): "not a brushwork model",
        str(_with_header(model, tmp_path / "adain.safetensors", arch="adain")): "architecture 'adain'",
        str(_with_header(model, tmp_path / "future.safetensors", format=99)): "upgrade brushwork",
        str(_with_header(model, tmp_path / "wide.safetensors", config={"width": 32, "blocks": 1})): "do not fit",
        str(_with_header(model, tmp_path / "recipe.safetensors", recipe={"minutes": "x"})): "recipe is damaged",
        "no-such-name": "no such model",
    }
    for path, needle in cases.items():
        _fails(["stylize", str(content_path), "--model", path, "-o", str(out)], capsys, Path(path).name, needle)
    assert not out.exists()
    _fails(["stylize", str(content_path), "--model", str(model), "-o", str(tmp_path / "nope" / "x.png")],
           capsys, "does not exist")


def test_cli_training_input_errors(tmp_path, photos, style_path, capsys) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    out = tmp_path / "m.safetensors"
    _fails(["train", str(style_path), "--photos", str(empty), "-o", str(out), "-q"], capsys, "empty", "no photos")
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 30), "red").save(small)
    _fails(["train", str(small), "--photos", str(photos), "-o", str(out), "-q"], capsys, "small.png", "too small")
    _fails(["train", str(style_path), "--photos", str(photos), "-o", str(tmp_path / "no" / "m.safetensors"), "-q"],
           capsys, "does not exist")
    assert not out.exists() and not work_folder(out).exists()


def test_cli_train_then_list_then_stylize(tmp_path, photos, style_path, content_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv(modelfile.ENV_MODELS, str(tmp_path / "models"))
    assert main(["train", str(style_path), "--photos", str(photos), "--steps", "1", "--batch", "1", "--crop", "32",
                 "--style-size", "64", "--width", "4", "-q"]) == 0
    assert main(["train", str(style_path), "--photos", str(photos), "--steps", "1", "--batch", "1", "--crop", "32",
                 "--style-size", "64", "--width", "4", "--skip", "-q", "-o", str(tmp_path / "models/skip.safetensors")]) == 0
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    assert "vangogh_starry_night" in capsys.readouterr().out
    plain = modelfile.load_model("vangogh_starry_night").header
    assert plain["arch"] == "johnson" and plain["training"]["content_weight"] == 4.0  # the defaults: bundled recipe
    assert modelfile.load_model("skip").header["arch"] == "johnson-skip"
    out = tmp_path / "o.png"
    assert main(["stylize", str(content_path), "--model", "vangogh_starry_night", "--size", "40", "-o", str(out)]) == 0
    assert Image.open(out).size == (40, 27)


def test_cli_video_with_a_model_keeps_frames_and_audio(tmp_path, trained, shared, capsys) -> None:
    from brushwork.video import probe

    model, _ = trained
    out = tmp_path / "v.mp4"
    assert main(["video", str(shared / "images/video/cockatoo.mp4"), "--model", str(model), "--size", "64",
                 "--max-frames", "3", "-o", str(out), "-q"]) == 0
    info, source = probe(out), probe(shared / "images/video/cockatoo.mp4")
    assert info.frames == 3 and max(info.width, info.height) == 64
    assert source.audio is not None and info.audio is not None
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # no frames folder left behind
    _fails(["video", str(shared / "images/video/cockatoo.mp4"), "--model", str(model), "--style", "x.jpg",
            "-o", str(tmp_path / "w.mp4")], capsys, "not both")


@pytest.mark.parametrize("fails_after", [0, 2])
def test_video_whose_encoder_fails_leaves_nothing(tmp_path, trained, shared, failing_ffmpeg, fails_after) -> None:
    """Frames stream into ffmpeg as they are painted: an encoder that stops at once or after some frames
    (a full disk) gives one line naming the output, and neither the output nor its partial file remains."""
    from brushwork import video
    from brushwork.feedforward.infer import stylize_video

    failing_ffmpeg("No space left on device", reads=fails_after * 64 * 36 * 3)
    out = tmp_path / "out" / "v.mp4"
    out.parent.mkdir()
    with pytest.raises(video.VideoError, match=r"v\.mp4: encoding failed \(No space left on device\)"):
        stylize_video(shared / "images/video/cockatoo.mp4", trained[0], out, size=64, max_frames=40)
    assert list(out.parent.iterdir()) == []


class _Flicker:
    """A painter that returns the frame with fresh noise each call: flicker the temporal step must remove."""

    sources: list = []

    def __init__(self) -> None:
        self.calls = 0

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x + torch.randn(x.shape, generator=torch.Generator().manual_seed(self.calls)) * 30


@pytest.mark.parametrize("finer", [False, True])
def test_temporal_step_follows_the_motion_and_removes_flicker(finer) -> None:
    import cv2

    from brushwork.feedforward.infer import stylize_frames, stylize_pairs

    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur((rng.random((96, 260, 3)) * 255).astype(np.float32), (0, 0), 3)
    texture = (texture - texture.min()) / np.ptp(texture) * 255
    big = [texture[:, 8 * t:8 * t + 160].astype(np.uint8) for t in range(5)]  # 8 px a frame at 160x96
    small = [cv2.resize(f, (80, 48), interpolation=cv2.INTER_AREA) for f in big]  # 4 px a frame at 80x48

    def flicker(outs) -> float:  # mean change against the previous output moved with the scene, inside
        return float(np.mean([np.abs(o[8:-8, 8:-12] - p[8:-8, 12:-8]).mean() for p, o in zip(outs, outs[1:])]))

    alone = [o for o, _ in stylize_frames(_Flicker(), small, temporal=0)]
    steps = list(stylize_pairs(_Flicker(), zip(small, big), temporal=0.9) if finer
                 else stylize_frames(_Flicker(), small, temporal=0.9))
    assert all(o.shape == (48, 80, 3) for o, _ in steps)
    assert steps[0][1] == 0 and all(share > 0.5 for _, share in steps[1:])
    assert flicker([o for o, _ in steps]) < 0.5 * flicker(alone)
    if finer:  # the flow is read from the pairs' second frames: frames moving the other way undo the gain
        wrong = [o for o, _ in stylize_pairs(_Flicker(), zip(small, big[::-1]), temporal=0.9)]
        assert flicker(wrong) > 2 * flicker([o for o, _ in steps])

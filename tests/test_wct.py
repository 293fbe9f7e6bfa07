"""The arbitrary-style network: whitening and colouring, decoders trained on the shared loop, --fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.cli import main
from brushwork.feedforward import modelfile
from brushwork.feedforward.train import work_folder
from brushwork.feedforward.wct import (DecoderSettings, WCTStylizer, coloured, load_decoders, statistics,
                                       train_decoders, transform)
from brushwork.nets.decoder import Decoders, DecoderConfig

TINY = DecoderSettings(steps=4, batch=1, crop=32, width=8, precision="float32")


@pytest.fixture(scope="module")
def decoders(tmp_path_factory, photos) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("decoders") / "d.safetensors"
    result = train_decoders(photos, out, TINY, checkpoint_every=100)
    assert result.steps == TINY.steps and [p.name for p in result.skipped] == ["broken.jpg"]
    return out, result.history


def _fails(argv: list[str], capsys, *needles: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("brushwork: error:"), err
    for needle in needles:
        assert needle in err, err


def test_decoders_mirror_vgg_and_restore_the_size() -> None:
    net = Decoders(DecoderConfig(levels=4, width=8))
    for level, channels in zip(range(1, 5), (64, 128, 256, 512)):
        assert net(torch.rand(1, channels, 5, 3), level).shape == (1, 3, 5 * 2 ** (level - 1), 3 * 2 ** (level - 1))
    assert net.layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def test_training_lowers_every_decoders_loss_and_saves_a_loadable_file(decoders) -> None:
    path, history = decoders
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    # without --transfer every decoder only rebuilds photos: pixels and its own features, nothing coloured
    assert set(history[0]) == {"loss"} | {f"{term}{k}" for term in ("pixel", "feature") for k in range(1, 5)}
    header = modelfile.read_file(path)[0]
    assert header["arch"] == "wct-decoders" and header["config"] == {"levels": 4, "width": 8}
    assert header["training"]["steps_done"] == TINY.steps
    assert load_decoders(path).config == DecoderConfig(4, 8)


@pytest.mark.parametrize("strength", [0.0, 0.6, 1.0])
def test_transform_gives_the_features_the_paintings_mean_and_covariance(strength) -> None:
    g = torch.Generator().manual_seed(0)
    content = torch.randn(1, 6, 9, 7, generator=g) * 3 + 1
    style = torch.randn(1, 6, 8, 8, generator=g) @ torch.randn(8, 8, generator=g) + 5
    out = transform(content, statistics(style, 0.5), strength)
    if strength == 0:
        assert torch.allclose(out, content, atol=1e-5)
        return
    s_mean, s_root = statistics(style, 0.5)
    o_mean, o_root = statistics(out, 0.5)
    if strength == 1:  # the covariance of the result is the painting's (up to the regularisation)
        assert torch.allclose(o_mean, s_mean, atol=1e-4)
        assert torch.allclose(o_root @ o_root, s_root @ s_root, rtol=1e-3, atol=1e-3)
    else:  # in between: the mean moves that share of the way
        c_mean = statistics(content, 0.5)[0]
        assert torch.allclose(o_mean, strength * s_mean + (1 - strength) * c_mean, atol=1e-4)


def test_a_flat_painting_gives_finite_statistics() -> None:
    flat = torch.full((1, 64, 8, 8), 7.0)
    mean, root = statistics(flat, -0.5)
    assert torch.isfinite(root).all() and torch.allclose(mean, torch.full((64,), 7.0))
    assert torch.isfinite(transform(torch.randn(1, 64, 4, 4), statistics(flat, 0.5), 1.0)).all()


def test_stylizer_paints_any_size_blends_and_keeps_colours(decoders, content_path, style_path, tmp_path) -> None:
    path, _ = decoders
    red = tmp_path / "red.png"
    Image.new("RGB", (30, 20), (220, 20, 20)).save(red)
    full = dict(decoders=path, precision="float32", strength=1.0)  # the paintings' statistics in full
    paint = WCTStylizer([style_path, red], blend=[1, 3], **full)
    out = paint(content_path, 45)
    assert out.size == (45, 30)
    kept = WCTStylizer([style_path, red], blend=[1, 3], preserve_colors="luminance", **full)(content_path, 45)
    assert not np.array_equal(np.asarray(out), np.asarray(kept))
    # the flat red painting alone: a flat picture (the painting's one colour through the decoders), never NaN
    flat = np.asarray(WCTStylizer([red], **full)(content_path, 45), dtype=float)
    assert flat.std(axis=(0, 1)).max() < 10 < np.asarray(out, dtype=float).std(axis=(0, 1)).max()


def test_above_coarse_the_coarse_levels_run_at_half_size(decoders, content_path, style_path, tmp_path) -> None:
    path, _ = decoders
    red = tmp_path / "red.png"
    Image.new("RGB", (30, 20), (220, 20, 20)).save(red)
    options = dict(decoders=path, precision="float32", strength=1.0)
    paint = WCTStylizer([style_path], coarse=24, **options)
    calls, run = [], paint._run
    paint._run = lambda x, longest, levels: calls.append((longest, tuple(levels))) or run(x, longest, levels)
    out = paint(content_path, 60)
    assert out.size == (60, 40) and calls == [(30, (4, 3, 2)), (60, (1,))]
    paint(content_path, 30)  # statistics cached per size and levels: 30 px was only the coarse levels' size
    calls.clear()
    paint(content_path, 24)  # at or under `coarse`: every level at the output's size
    assert calls == [(24, (4, 3, 2, 1))]
    whole = WCTStylizer([style_path], coarse=None, **options)(content_path, 60)
    assert not np.array_equal(np.asarray(out), np.asarray(whole))
    # the two sizes join without a seam or a frame: through the bundled decoders (these four-step ones
    # paint no colour flat) a flat painting still gives a flat picture
    flat = WCTStylizer([red], coarse=24, precision="float32", strength=1.0)(content_path, 60)
    assert np.asarray(flat, dtype=float).std(axis=(0, 1)).max() < 10
    with pytest.raises(ValueError, match="coarse"):
        WCTStylizer([style_path], coarse=4, **options)


def test_cli_fast_writes_the_picture_and_refuses_bad_input_in_one_line(decoders, content_path, style_path,
                                                                         tmp_path, capsys) -> None:
    path, _ = decoders
    out = tmp_path / "o.png"
    assert main(["stylize", str(content_path), "--style", str(style_path), "--fast", "--decoders", str(path),
                 "--size", "40", "--strength", "0.5", "-o", str(out)]) == 0
    assert Image.open(out).size == (40, 27)
    thin, bad = tmp_path / "thin.png", tmp_path / "bad.png"
    Image.new("RGB", (3, 200), "blue").save(thin)
    bad.write_bytes(b"not a png")
    new = tmp_path / "new.png"
    fast = ["--fast", "--decoders", str(path), "-o", str(new), "--size", "40"]
    _fails(["stylize", str(content_path), "--style", str(thin), *fast], capsys, "thin.png", "too thin")
    _fails(["stylize", str(content_path), "--style", str(bad), *fast], capsys, "bad.png")
    _fails(["stylize", str(content_path), "--style", str(style_path), "--model", "m", *fast], capsys, "not both")
    _fails(["stylize", str(content_path), "--style", str(style_path), "--fast", "--decoders",
            str(tmp_path / "none.safetensors"), "-o", str(new)], capsys, "none.safetensors", "no such decoder file")
    # the optimiser has no decoders: refused, not silently ignored (its --strength: tests/test_strength.py)
    _fails(["stylize", str(content_path), "--style", str(style_path), "--decoders", str(path), "-o", str(new)],
           capsys, "--decoders applies to --fast")
    assert not new.exists()


def test_decoder_crops_must_suit_the_levels() -> None:
    with pytest.raises(ValueError, match="--crop 36 is not a multiple of 8"):
        DecoderSettings(crop=36)
    assert DecoderSettings(crop=40).crop == 40


def test_a_style_model_file_is_not_taken_for_decoders(decoders, tmp_path) -> None:
    from brushwork.nets.transformer import TransformerConfig, TransformerNet

    other = modelfile.save_model(TransformerNet(TransformerConfig(4, 1)), tmp_path / "m.safetensors", styles=[],
                                 training={})
    with pytest.raises(modelfile.ModelError, match="not wct-decoders"):
        load_decoders(other)


def test_resume_refuses_other_settings_and_continues_the_same(decoders, photos, tmp_path) -> None:
    out = tmp_path / "d.safetensors"
    first = train_decoders(photos, out, TINY.with_(steps=2), checkpoint_every=1)
    assert first.steps == 2 and (work_folder(out) / "checkpoint.pt").exists()
    with pytest.raises(modelfile.ModelError, match="other styles or settings"):
        train_decoders(photos, out, TINY.with_(steps=3, width=4), resume=True)
    assert train_decoders(photos, out, TINY.with_(steps=3), resume=True).steps == 3


def test_fine_tuning_trains_only_the_chosen_levels_on_coloured_features(decoders, photos, tmp_path) -> None:
    start, _ = decoders
    out = tmp_path / "tuned.safetensors"
    seen: list[dict[str, float]] = []
    settings = TINY.with_(steps=2, batch=2, fine_tune=str(start), train_levels=(2,), transfer=0.5)
    train_decoders(photos, out, settings, checkpoint_every=100, callback=lambda s: seen.append(s.losses))
    # one crop rebuilds its photo, the other is held to features coloured with its neighbour's statistics
    assert set(seen[0]) == {"pixel2", "feature2", "transfer2"}
    before, after = load_decoders(start).state_dict(), load_decoders(out).state_dict()
    for key in before:
        assert torch.equal(before[key], after[key]) == (not key.startswith("decoders.1.")), key
    training = modelfile.read_file(out)[0]["training"]
    assert training["fine_tune"] == str(start) and len(training["fine_tune_sha256"]) == 64


def test_cli_fine_tunes_decoders(decoders, photos, tmp_path, capsys) -> None:
    out = tmp_path / "tuned.safetensors"
    assert main(["train-decoders", "--photos", str(photos), "-o", str(out), "--steps", "1", "--batch", "2", "--crop",
                 "32", "--width", "8", "--precision", "float32", "--fine-tune", str(decoders[0]), "--train-levels",
                 "3,4", "--transfer", "0.5", "-q"]) == 0
    training = modelfile.read_file(out)[0]["training"]
    assert training["train_levels"] == [3, 4] and training["transfer"] == 0.5 and training["steps_done"] == 1
    with pytest.raises(SystemExit):
        main(["train-decoders", "--photos", str(photos), "-o", str(out), "--transfer", "2"])
    assert "transfer" in capsys.readouterr().err


def test_coloured_crops_take_another_crops_mean_at_a_strength_of_a_half_to_one() -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.stack([torch.randn(5, 6, 6, generator=g) + 3, torch.randn(5, 6, 6, generator=g) - 2])
    out = coloured(f, 1, torch.Generator().manual_seed(1))
    # whitening and colouring at strength s moves the mean from the crop's own to the other's by s
    own, other, got = f[1].mean((1, 2)), f[0].mean((1, 2)), out[0].mean((1, 2))
    s = ((got - own) / (other - own))
    assert out.shape == (1, 5, 6, 6) and torch.allclose(s, s[0].expand_as(s), atol=1e-3) and 0.5 <= s[0] <= 1


def test_fine_tuning_settings_are_checked(decoders, photos, tmp_path) -> None:
    with pytest.raises(ValueError, match="--train-levels 3 names a level above --levels 2"):
        DecoderSettings(levels=2, crop=32, train_levels=(3,), fine_tune="bundled")
    with pytest.raises(ValueError, match="others would stay random"):
        DecoderSettings(train_levels=(4,))
    assert DecoderSettings(train_levels=(4, 3, 4), fine_tune="bundled").train_levels == (3, 4)
    with pytest.raises(ValueError, match="needs --batch 2"):
        DecoderSettings(batch=1, transfer=1.0)
    with pytest.raises(ValueError, match="is no crop"):
        DecoderSettings(batch=4, transfer=0.1)
    assert DecoderSettings(batch=2, transfer=0.25).coloured == 1 and DecoderSettings(batch=2, transfer=0.5).coloured == 1
    assert DecoderSettings(batch=25, transfer=0.58).coloured == 15
    assert DecoderSettings(levels=1, train_levels=(1,)).train_levels == (1,)  # every level trained: nothing stays random
    with pytest.raises(ValueError, match="transfer"):
        DecoderSettings(transfer=1.5)
    out = tmp_path / "d.safetensors"
    with pytest.raises(modelfile.ModelError, match="fine-tune it with --levels 4 --width 8"):
        train_decoders(photos, out, TINY.with_(width=4, fine_tune=str(decoders[0])))
    with pytest.raises(modelfile.ModelError, match="none.safetensors: no such decoder file to fine-tune"):
        train_decoders(photos, out, TINY.with_(fine_tune=str(tmp_path / "none.safetensors")))
    assert not out.exists()


def test_a_checkpoint_from_before_fine_tuning_resumes(photos, tmp_path) -> None:
    out = tmp_path / "d.safetensors"
    train_decoders(photos, out, TINY.with_(steps=1), checkpoint_every=1)
    checkpoint = work_folder(out) / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=False)
    for key in ("fine_tune", "train_levels", "transfer"):  # what an older brushwork wrote
        del state["settings"][key]
    torch.save(state, checkpoint)
    assert train_decoders(photos, out, TINY.with_(steps=2), resume=True).steps == 2


def test_sample_strips_in_bfloat16(photos, content_path, tmp_path) -> None:
    out = tmp_path / "d.safetensors"
    train_decoders(photos, out, TINY.with_(steps=1, precision="bfloat16"), samples=[content_path], sample_every=1)
    from brushwork import images

    w, h = images.fit(images.load(content_path), 256).size
    assert Image.open(work_folder(out) / "samples" / "step_000001.jpg").size == (w, 2 * h)  # photo above its rebuild


def test_cli_video_fast_keeps_frames_and_audio(tmp_path, decoders, shared, style_path) -> None:
    from brushwork.video import probe

    path, _ = decoders
    out = tmp_path / "v.mp4"
    assert main(["video", str(shared / "images/video/cockatoo.mp4"), "--style", str(style_path), "--fast",
                 "--decoders", str(path), "--size", "64", "--max-frames", "3", "-o", str(out), "-q"]) == 0
    info = probe(out)
    assert info.frames == 3 and max(info.width, info.height) == 64 and info.audio is not None


def test_init_fast_starts_the_optimiser_from_the_fast_picture(decoders, content_path, style_path, fast,
                                                              monkeypatch) -> None:
    from brushwork import Stylizer, images
    from brushwork.feedforward import wct

    path, _ = decoders
    monkeypatch.setattr(wct, "DECODERS", path)
    first = []
    Stylizer(fast.with_(init="fast", iterations=1)).run(content_path, [style_path], seed=0,
                                                        callback=lambda step: first.append(step.image.clone()))
    photo = images.to_tensor(images.fit(images.load(content_path), fast.size))
    expected = WCTStylizer([style_path], strength=1.0, precision="float32").tensor(photo)
    assert torch.allclose(first[0], expected, atol=1e-3)


def test_the_bundled_decoders_are_float16_within_40_mb_and_rebuild_a_photo(content_path) -> None:
    """At strength 0 the picture is the decoders' reconstruction of the photo: untrained decoders score
    about 0.99 here, the first bundled ones (800 steps) 0.81, the ninth session's 0.67, these (relu3_1 and relu4_1
    fine-tuned on coloured features) 0.46 (README)."""
    from brushwork import distances
    from brushwork.feedforward.wct import DECODERS

    assert DECODERS.stat().st_size <= 40e6
    assert all(t.dtype == torch.float16 for t in modelfile.read_file(DECODERS)[1].values())
    rebuilt = WCTStylizer([content_path], strength=0.0, precision="float32")(content_path, 128)
    assert distances(rebuilt, content_path, content_path).content < 0.52

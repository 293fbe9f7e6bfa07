"""The engine on real weights at tiny sizes: each test runs in about a second."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import brushwork
from brushwork import Stylizer, images, presets
from brushwork.losses import Term


def test_default_run_lowers_the_loss_and_keeps_aspect(content_path, style_path, fast) -> None:
    result = Stylizer(fast).run(content_path, style_path, seed=0)
    assert result.image.size == (48, 32)  # chelsea is 451x300
    assert result.iterations == 4 and not result.interrupted
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_stylize_one_liner_accepts_options(content_path, style_path) -> None:
    img = brushwork.stylize(content_path, style_path, size=40, iterations=2, precision="float32", seed=0)
    assert isinstance(img, Image.Image) and max(img.size) == 40


def test_unknown_option_is_a_clear_error(content_path, style_path) -> None:
    with pytest.raises(TypeError, match="unknown option"):
        brushwork.stylize(content_path, style_path, sizee=40)


def test_seed_makes_noise_runs_reproducible(content_path, style_path, fast) -> None:
    config = fast.with_(init="noise", iterations=2)
    a, b, c = (Stylizer(config).run(content_path, style_path, seed=s).tensor for s in (1, 1, 2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("optimizer, lr", [("adam", 5.0), ("gd", 5.0), ("lbfgs", 1.0)])
def test_each_optimiser_makes_progress(content_path, style_path, fast, optimizer: str, lr: float) -> None:
    config = fast.with_(optimizer=optimizer, lr=lr, iterations=5, init="noise")
    result = Stylizer(config).run(content_path, style_path, seed=0)
    assert result.history[-1]["content"] < result.history[0]["content"]


@pytest.mark.parametrize("init", ["content", "palette", "noise", "style", "image"])
def test_init_options(content_path, style_path, fast, init: str, tiny_rgb) -> None:
    init_value = str(tiny_rgb) if init == "image" else init
    result = Stylizer(fast.with_(iterations=1)).run(content_path, style_path, init=init_value, seed=0)
    # with one step the best image is the initial one
    if init == "content":
        assert result.history[0]["content"] == 0
    else:
        assert result.history[0]["content"] > 0


def test_palette_init_is_the_photo_in_the_paintings_colours(content_path, style_path, fast) -> None:
    s = Stylizer(fast)
    photo = images.to_tensor(images.fit(images.load(content_path), 48))
    painting = images.to_tensor(images.fit(images.load(style_path), 48))
    start = s.initial("palette", photo, [images.load(style_path)], torch.Generator())
    assert torch.allclose(start.mean((0, 2, 3)), painting.mean((0, 2, 3)), atol=3)  # 0-255 levels, after clamping
    assert (start.mean((0, 2, 3)) - photo.mean((0, 2, 3))).abs().max() > 20
    # the photo's shapes stay: its pixels and the start's are strongly correlated in luminance
    assert torch.corrcoef(torch.stack([photo.mean(1).flatten(), start.mean(1).flatten()]))[0, 1] > 0.8


def test_palette_init_recolours_each_mask_region_to_its_own_painting(content_path, shared, fast) -> None:
    styles = [images.load(shared / "images/style/munch_the_scream.jpg"),
              images.load(shared / "images/style/vangogh_starry_night.jpg")]
    photo = images.to_tensor(images.fit(images.load(content_path), 48))
    h, w = photo.shape[-2:]
    left = torch.zeros(1, 1, h, w)
    left[..., : w // 2] = 1
    s = Stylizer(fast)
    start = s.initial("palette", photo, styles, torch.Generator(), [1, 1], [left, 1 - left])
    alone = [s.initial("palette", photo, [style], torch.Generator()) for style in styles]
    assert torch.allclose(start[..., : w // 2], alone[0][..., : w // 2])
    assert torch.allclose(start[..., w // 2:], alone[1][..., w // 2:])
    # a region no mask covers keeps the photo's colours
    uncovered = s.initial("palette", photo, styles[:1], torch.Generator(), [1], [left])
    assert torch.equal(uncovered[..., w // 2:], photo[..., w // 2:])


def test_several_styles_with_blend_weights(content_path, shared, fast) -> None:
    styles = [shared / "images/style/munch_the_scream.jpg", shared / "images/style/picabia_udnie.jpg"]
    s = Stylizer(fast)
    only_first = s.run(content_path, styles, style_blend=[1, 0], seed=0)
    mixed = s.run(content_path, styles, style_blend=[1, 1], seed=0)
    single = s.run(content_path, styles[:1], seed=0)
    assert torch.allclose(only_first.tensor, single.tensor)
    assert not torch.allclose(mixed.tensor, single.tensor)


def test_style_targets_are_prepared_once_per_size(content_path, style_path, fast, monkeypatch) -> None:
    s = Stylizer(fast.with_(iterations=1))
    calls = []
    original = s.features
    monkeypatch.setattr(s, "features", lambda x, layers, **kw: calls.append(tuple(layers)) or original(x, layers, **kw))
    s.run(content_path, style_path)
    first = len(calls)
    calls.clear()
    s.run(content_path, style_path)
    # the second run skips the style image's forward pass, and the one for its histogram tables
    assert fast.histogram_weight and len(calls) == first - 2


def test_luminance_transfer_keeps_the_photo_palette(content_path, style_path, fast) -> None:
    plain = Stylizer(fast).run(content_path, style_path, seed=0).tensor
    kept = Stylizer(fast.with_(preserve_colors="luminance")).run(content_path, style_path, seed=0).tensor
    content = brushwork.images.to_tensor(brushwork.images.fit(brushwork.images.load(content_path), 48))

    def chroma_gap(t: torch.Tensor) -> float:
        norm = lambda v: v / v.sum(1, keepdim=True).clamp_min(1)  # noqa: E731
        return (norm(t) - norm(content)).abs().mean().item()

    assert chroma_gap(kept) < chroma_gap(plain)


def test_histogram_matching_recolours_the_style_target(content_path, style_path, fast) -> None:
    from brushwork import images
    from brushwork.losses import gram, relative_sq_error

    content, style = images.load(content_path), images.load(style_path)
    content_gram = None
    gaps = []
    for mode in (None, "histogram"):
        s = Stylizer(fast.with_(preserve_colors=mode))
        if content_gram is None:
            feats = s.features(images.to_tensor(images.fit(content, 48)), ["relu1_1"])
            content_gram = gram(feats["relu1_1"])
        target = s._style_targets([style], [1.0], 48, content)[0]["relu1_1"]
        gaps.append(relative_sq_error(target, content_gram).item())
    # relu1_1 Grams are mostly colour: a recoloured painting's sit much nearer the photo's
    assert gaps[1] < 0.5 * gaps[0]


def test_pyramid_ends_at_full_size(content_path, style_path, fast) -> None:
    config = fast.with_(size=64, pyramid=(0.5,), pyramid_iterations=(3,), iterations=2)
    steps = []
    result = Stylizer(config).run(content_path, style_path, callback=steps.append, seed=0)
    assert result.image.size == (64, 43)
    assert [s.level for s in steps] == [0, 0, 0, 1, 1]
    assert steps[0].image.shape[-1] == 32 and steps[-1].total == 5


def test_enlarging_with_the_photos_detail_gives_back_the_photo() -> None:
    # a coarse level that is the photo shrunk enlarges to the photo itself with all of its finer band, and to a
    # blur of it without; a half share lands between the two
    photo = torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(0)) * 255
    small = images.resize_tensor(photo, (20, 30))
    errors = [(images.enlarge(small, photo, d) - photo).abs().mean().item() for d in (1.0, 0.5, 0.0)]
    assert errors[0] < 1e-3 and errors[0] < errors[1] < errors[2] and errors[2] > 10
    assert images.enlarge(small * 0 + 300, photo, 1.0).max() <= 255  # still clamped to pixel values


@pytest.mark.parametrize("stop", [None, 2])
def test_pyramid_detail_starts_the_next_level_nearer_the_photo(content_path, style_path, fast, stop) -> None:
    # one iteration at full size after a coarse level, or Ctrl-C during the coarse level (its picture is enlarged
    # to the output as the next level would start): the photo's finer band, added on enlarging, is content the full
    # size need not rebuild from a blur
    def interrupt(step) -> None:
        if step.iteration == stop:
            raise KeyboardInterrupt

    config = fast.with_(size=64, pyramid=(0.5,), pyramid_iterations=(3,), iterations=1)
    results = [Stylizer(config.with_(pyramid_detail=d)).run(content_path, style_path, callback=interrupt, seed=0)
               for d in (0.0, 1.0)]
    assert all(r.image.size == (64, 43) and r.interrupted == (stop is not None) for r in results)
    content = [brushwork.distances(r.image, content_path, style_path).content for r in results]
    assert content[1] < 0.8 * content[0]


def test_pyramid_skips_levels_too_small_for_the_network(content_path, style_path, fast) -> None:
    steps = []
    config = fast.with_(size=40, pyramid=(0.25, 0.5), pyramid_iterations=(2, 2), iterations=2)
    Stylizer(config).run(content_path, style_path, callback=steps.append)
    assert [s.level for s in steps] == [0, 0]  # 10 and 20 px are under relu5_1's 16 px on the short side


def test_ctrl_c_returns_the_best_image_so_far(content_path, style_path, fast) -> None:
    def interrupt(step) -> None:
        if step.iteration == 3:
            raise KeyboardInterrupt

    result = Stylizer(fast.with_(iterations=50)).run(content_path, style_path, callback=interrupt, seed=0)
    assert result.interrupted and result.iterations == 3
    assert result.image.size == (48, 32)


class NaNTerm(Term):
    name = "broken"

    def __call__(self, feats, image):
        return image.sum() * float("nan")


def test_nan_loss_stops_with_a_clear_error(content_path, style_path, fast) -> None:
    with pytest.raises(FloatingPointError, match="NaN"):
        Stylizer(fast).run(content_path, style_path, extra_terms=[(NaNTerm(), 1.0)])


def test_too_small_for_the_network_is_a_clear_error(content_path, style_path, fast) -> None:
    with pytest.raises(ValueError, match="at least 16"):
        Stylizer(fast.with_(size=8)).run(content_path, style_path)


def test_bfloat16_is_close_to_float32(content_path, style_path, fast) -> None:
    cfg = fast.with_(iterations=1)
    a = Stylizer(cfg).run(content_path, style_path, seed=0).history[0]
    b = Stylizer(cfg.with_(precision="bfloat16")).run(content_path, style_path, seed=0).history[0]
    assert abs(a["style"] - b["style"]) / a["style"] < 0.05


def test_bfloat16_keeps_the_pixel_gradient_in_float32(content_path, fast) -> None:
    """L-BFGS differences pixel gradients; bfloat16 would round them to 8 bits (benchmarks/results/precision.md)."""
    s = Stylizer(fast.with_(precision="bfloat16"))
    x = images.to_tensor(images.load(content_path).resize((48, 32)), s.device).requires_grad_(True)
    s.features(x, ["relu2_1"])["relu2_1"].float().square().mean().backward()
    assert x.grad.dtype == torch.float32
    assert (x.grad.to(torch.bfloat16).float() != x.grad).float().mean() > 0.5  # not bfloat16 values
    dtypes = [m.weight.dtype for m in s.net.features if hasattr(m, "weight")]
    assert dtypes[0] == torch.float32 and set(dtypes[1:]) == {torch.bfloat16}


def test_vgg19_needs_vgg19_weights(fast) -> None:
    with pytest.raises(ValueError, match="vgg19"):
        Stylizer(fast.with_(arch="vgg19"), weights="vgg16")


def test_style_target_cache_stays_bounded(style_path, fast) -> None:
    """Histogram matching keys targets on each content image: a long video must not grow memory."""
    from brushwork.perceptual import STYLE_CACHE_SIZE

    s = Stylizer(fast.with_(size=32, iterations=1, preserve_colors="histogram"))
    for shade in range(STYLE_CACHE_SIZE + 3):
        s.run(Image.new("RGB", (32, 32), (20 * shade, 90, 140)), style_path)
    assert len(s._style_cache) == STYLE_CACHE_SIZE


def test_vgg19_run_asks_the_registry_for_vgg19(fast, monkeypatch) -> None:
    import brushwork.optimise as engine

    asked = []

    def fake_load(source):
        asked.append(source)
        raise RuntimeError("offline")

    monkeypatch.setattr(engine, "load_weights", fake_load)
    with pytest.raises(RuntimeError, match="offline"):
        Stylizer(fast.with_(arch="vgg19"))
    assert asked == ["vgg19"]


def test_lbfgs_keeps_pixels_in_range_so_saving_changes_nothing(shared, fast) -> None:
    """Kandinsky's saturated colours push an unbounded L-BFGS far past 0-255 within a few steps; the
    clamp at saving would then undo what the loss paid for."""
    content = shared / "images/content/rocket.jpg"
    style = shared / "images/style/kandinsky_composition_vii.jpg"
    steps = []
    Stylizer(fast.with_(size=64, iterations=25, style_weight=5.0)).run(content, style, callback=steps.append,
                                                                        seed=0)
    for step in steps:
        assert 0 <= step.image.min() and step.image.max() <= 255, step.iteration


def test_pyramid_counts_must_match_its_levels(content_path, style_path, fast) -> None:
    config = fast.with_(size=64, pyramid=(0.25, 0.5), pyramid_iterations=(3,))
    with pytest.raises(ValueError, match="2 level.*1; give one count per level"):
        Stylizer(config).run(content_path, style_path)


def test_bfloat16_runs_aim_at_float32_targets(content_path, style_path, fast) -> None:
    """Targets are computed once, so they are computed exactly: a rounded target biases every step."""
    content, style = images.load(content_path), images.load(style_path)
    grams = [Stylizer(fast.with_(precision=p))._style_targets([style], [1.0], 48, content)[0]
             for p in ("float32", "bfloat16")]
    assert grams[0].keys() == grams[1].keys()
    for layer, target in grams[0].items():
        assert grams[1][layer].dtype == torch.float32 and torch.equal(grams[1][layer], target), layer


@pytest.mark.parametrize("size, sides", [(128, [16, 32, 64]), (256, [32, 64, 128]), (512, [32, 64, 128, 256]),
                                         (1024, [32, 64, 128, 256, 512]), (300, [19, 38, 75, 150])])
def test_default_pyramid_starts_at_32_px_at_every_size(size, sides) -> None:
    # 128 px video keeps an eighth (16 px); from 256 px up the coarsest level is 32 px, halving the size
    plan = Stylizer(presets.DEFAULT.with_(size=size)).levels(Image.new("RGB", (600, 600)))
    assert plan == [(side, 50) for side in sides] + [(size, presets.DEFAULT.iterations)]


@pytest.mark.parametrize("pyramid, counts, plan", [
    ((), (), [(512, 100)]),  # no pyramid: pyramid_px adds none
    ((0.5,), (7,), [(32, 7), (64, 7), (128, 7), (256, 7), (512, 100)]),
    ((0.25, 0.5), (7, 3), [(32, 7), (64, 7), (128, 7), (256, 3), (512, 100)])])
def test_pyramid_px_adds_halves_of_the_coarsest_level_at_its_count(pyramid, counts, plan) -> None:
    config = presets.SUBTLE.with_(size=512, pyramid=pyramid, pyramid_iterations=counts, pyramid_px=32)
    assert Stylizer(config).levels(Image.new("RGB", (600, 600))) == plan


def test_a_pyramid_given_in_python_means_exactly_its_levels() -> None:
    # as on the command line: DEFAULT.with_(pyramid=...) drops the 32 px halving unless pyramid_px is given
    assert presets.DEFAULT.with_(pyramid=(0.5,)).pyramid_px == 0
    assert presets.DEFAULT.with_(pyramid=(0.5,), pyramid_px=16).pyramid_px == 16
    assert presets.DEFAULT.with_(size=512).pyramid_px == presets.DEFAULT.pyramid_px == 32

"""Print sizes (issue 13): a whole-picture solve that fits, then the whole picture's objective at full size,
evaluated tile by tile; forced here through a small memory budget, with tiny tiles and a shallow network
so that each test takes a second or two."""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter

import pytest
import torch
from PIL import Image

from brushwork import Stylizer, images, losses, memory, presets, tiles
from brushwork.losses import gram
from brushwork.perceptual import Perceptual
from brushwork.weights import load_weights

# without the default's histogram term, a whole-picture term that a tiled stage goes without (whose own test is
# test_a_tiled_run_keeps_the_histogram_term_to_its_whole_picture_level): the tiled objective is the whole one's
SHALLOW = presets.DEFAULT.with_(precision="float32", content_layers=("relu2_2",),
                                style_layers=("relu1_1", "relu2_1", "relu3_1"), pyramid=(0.5,),
                                pyramid_iterations=(3,), pyramid_px=0, iterations=3, size=160, histogram_weight=0.0)


def budget_for(config: presets.Config, width: int, height: int, window: int) -> int:
    """Bytes that hold the full-size buffers and one window of side `window`, not the whole picture."""
    return tiles.need(width, height, config, torch.float32, window, config.history)


def test_receptive_fields_of_vgg16() -> None:
    assert tiles.receptive_field(tiles.network_layers(presets.DEFAULT)) == (132, 16)  # relu5_1
    assert tiles.receptive_field(tiles.network_layers(SHALLOW)) == (24, 4)  # relu3_1


@pytest.mark.parametrize("window", [150, 200, 260])  # from 6 margins up: tiles of 4 margins keep every L-BFGS pair
def test_the_plan_takes_the_largest_tiles_that_fit(window) -> None:
    limit = memory.Budget(budget_for(SHALLOW, 400, 300, window), "", "")
    tiling = tiles.choose(400, 300, SHALLOW, torch.float32, limit)
    field, stride = tiles.receptive_field(tiles.network_layers(SHALLOW))
    assert tiling.margin % stride == 0 and tiling.margin >= field  # windows overlap by twice the field
    assert tiling.core % stride == 0 and tiling.core + 2 * tiling.margin <= window
    assert tiling.core + 2 * tiling.margin > window - 2 * stride - 400 // 4  # not needlessly small
    covered = torch.zeros(300, 400)
    for top, left, bottom, right in tiling.boxes:
        covered[top:bottom, left:right] += 1
    assert bool((covered == 1).all())  # the tiles' own squares cover the picture once
    assert tiles.choose(400, 300, SHALLOW, torch.float32, memory.Budget(10**12, "", "")) is None  # fits whole


@pytest.mark.parametrize("config, width, height, window", [(presets.DEFAULT, 9640, 9640, None),
                                                          (SHALLOW, 400, 300, 90)])
def test_tiles_are_never_smaller_than_twice_their_margin(config, width, height, window) -> None:
    """9640 px in 8 GB used to plan 363,609 tiles of 16 px, each solving a 304 px window; now it is refused,
    and the size it names plans tiles of at least two margins."""
    limit = memory.Budget(8_000_000_000 if window is None else budget_for(config.with_(history=1), width, height, window),
                          "", "")  # one L-BFGS pair, the least the plan keeps
    margin = tiles.plan(width // 4, height // 4, config, torch.float32, memory.Budget(10**12, "", "")).margin
    with pytest.raises(memory.MemoryLimitError, match=rf"tiles of {2 * margin} px") as err:
        tiles.choose(width, height, config, torch.float32, limit)
    fits = int(re.search(r"--size (\d+) fits", str(err.value))[1])
    tiling = tiles.plan(fits, round(fits * height / width), config, torch.float32, limit)
    assert tiling.core >= 2 * tiling.margin == 2 * margin


def test_tiled_grams_and_features_equal_the_whole_pictures() -> None:
    net = Perceptual(SHALLOW, load_weights())
    image = torch.rand(1, 3, 100, 136, generator=torch.Generator().manual_seed(0)) * 255  # seeded: on some random images the float32 sums differed past the tolerance
    feats = lambda t, layers: net.features(t, layers, exact=True)  # noqa: E731
    tiling = tiles.Tiling(100, 136, core=32, margin=24)
    tiled = tiles.grams(feats, image, tiling, net.net.names, SHALLOW.style_layers)
    maps = tiles.assemble(feats, image, tiling, net.net.names, SHALLOW.style_layers)
    with torch.no_grad():
        whole = feats(image, SHALLOW.style_layers)
    for layer, f in whole.items():
        assert torch.allclose(tiled[layer], gram(f), rtol=1e-3, atol=1e-2), layer
        assert torch.allclose(maps[layer], f, rtol=1e-3, atol=1e-3), layer


@pytest.fixture(scope="module")
def criterion(shared):
    """The shallow network, a photo and the terms of a run at 100 x 136: plain, or two regions and a keep mask."""
    net = Perceptual(SHALLOW, load_weights())
    photo = images.load(shared / "images/content/chelsea.png").resize((136, 100))
    paintings = [images.load(shared / f"images/style/{name}")
                 for name in ("munch_the_scream.jpg", "matisse_woman_with_a_hat.jpg")]
    content = images.to_tensor(photo, net.device)
    left = torch.zeros(1, 1, 100, 136)
    left[..., :60] = 1
    keep = torch.zeros(1, 1, 100, 136)
    keep[..., 30:60, 40:90] = 0.7
    plain = net.terms(content, paintings[:1], [1.0], photo)
    regions = net.terms(content, paintings, [1.0, 2.0], photo, masks=[left, 1 - left], keep=keep)
    return net, content, {"plain": plain, "regions": regions}


def loss_and_gradient(judge, x: torch.Tensor, terms) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    values = judge.evaluate(x, terms)
    total = sum(w * values[term.name] for term, w in terms)
    total.backward()
    return total.detach(), x.grad


@pytest.mark.parametrize("kind", ["plain", "regions"])
def test_the_tiled_objective_has_the_whole_pictures_value_and_gradient(criterion, kind) -> None:
    """The property that makes a tiled print the untiled picture: with margins wider than the receptive
    field, the sums of the tiles' own squares are the whole picture's, and so is the gradient."""
    net, content, terms = criterion
    x = (content + torch.randn(content.shape, generator=torch.Generator().manual_seed(0)) * 30).clamp(0, 255)
    whole_loss, whole_grad = loss_and_gradient(net, x, terms[kind])
    tiled = tiles.Tiled(net.features, tiles.Tiling(100, 136, core=32, margin=24), net.net.names)
    assert len(tiled.parts) == 20  # 4 x 5, the last row and column narrower
    tiled_loss, tiled_grad = loss_and_gradient(tiled, x, terms[kind])
    assert torch.isclose(tiled_loss, whole_loss, rtol=1e-5)
    scale = whole_grad.abs().max()
    assert (tiled_grad - whole_grad).abs().max() < 1e-4 * scale


def test_the_full_size_buffers_count_the_content_targets_a_run_holds(criterion) -> None:
    """A shallow content layer holds more per pixel than relu4_2 (relu2_2: 128 bytes against 32); the plan
    used to count relu4_2's whatever the layer, and a shallow print ran past its budget."""
    net, content, terms = criterion
    targets = next(term for term, _ in terms["plain"] if term.name == "content").targets
    held = sum(t.numel() * t.element_size() for t in targets.values()) / content[0, 0].numel()
    deep = SHALLOW.with_(content_layers=("relu4_2",))
    assert memory.maps_per_pixel(SHALLOW.arch, SHALLOW.content_layers) == held
    assert tiles.full_per_pixel(SHALLOW, 5) - tiles.full_per_pixel(deep, 5) == held - memory.maps_per_pixel(deep.arch, deep.content_layers)


def test_a_tiled_region_resizes_its_mask_once_per_layer_size(criterion, monkeypatch) -> None:
    """Each region's full-size mask is pooled to each style layer's size once, not again for every tile and pass."""
    net, content, terms = criterion
    style = next(term for term, _ in terms["regions"] if term.name == "style")
    fresh = losses.RegionsTerm([(dataclasses.replace(term), w) for term, w in style.regions])  # empty caches
    regions = [(fresh if term is style else term, w) for term, w in terms["regions"]]
    sizes = []
    monkeypatch.setattr(losses, "resize_mask", lambda mask, size, resize=losses.resize_mask: (
        sizes.append(tuple(size)), resize(mask, size))[1])
    loss_and_gradient(tiles.Tiled(net.features, tiles.Tiling(100, 136, core=32, margin=24), net.net.names), content,
                      regions)
    assert Counter(sizes) == {(100 // stride, 136 // stride): 2 for stride in (1, 2, 4)}  # 2 regions, 3 layers


def test_a_margin_narrower_than_the_receptive_field_gets_another_gradient(criterion) -> None:
    """The same check fails when the windows' zero padding reaches the tiles' own squares."""
    net, content, terms = criterion
    whole_loss, whole_grad = loss_and_gradient(net, content, terms["plain"])
    narrow = tiles.Tiled(net.features, tiles.Tiling(100, 136, core=32, margin=4), net.net.names)
    _, tiled_grad = loss_and_gradient(narrow, content, terms["plain"])
    assert (tiled_grad - whole_grad).abs().max() > 1e-2 * whole_grad.abs().max()


@pytest.fixture(scope="module")
def tiled_runs(shared):
    """The same run tiled (a budget that holds 144 px windows: tiles of four margins with every L-BFGS pair) and whole, and one stopped after one full-size
    iteration."""
    photo, painting = shared / "images/content/chelsea.png", shared / "images/style/munch_the_scream.jpg"
    config = SHALLOW.with_(size=240)  # 240x159: more than one window of 144 px, so it tiles
    w, h = images.fit_size(images.load(photo).size, 240)
    small = Stylizer(config, max_memory=budget_for(config, w, h, 144))
    steps, released = [], []  # released: the steps done when a run handed freed memory back
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memory, "release", lambda: released.append(len(steps)))
        tiled = small.run(photo, painting, seed=0, callback=steps.append)
        whole = Stylizer(config).run(photo, painting, seed=0)

    def stop(step) -> None:
        if step.iteration == 5:
            raise KeyboardInterrupt

    stopped = small.run(photo, painting, seed=0, callback=stop)
    tiling = tiles.choose(w, h, config, small.dtype, memory.budget(small.device, small.max_memory))
    return tiled, whole, stopped, steps, tiling, released


def test_a_tiled_run_is_the_whole_run(tiled_runs) -> None:
    tiled, whole, _, steps, tiling, released = tiled_runs
    assert len(tiling.boxes) >= 4 and tiling.history == SHALLOW.history
    assert tiled.image.size == whole.image.size and not tiled.interrupted and tiled.partial is None
    assert [s.iteration for s in steps] == list(range(1, 7)) and steps[-1].total == 6  # half size, then full
    # freed memory handed back after the half-size solve and the full-size targets, then after every window of
    # both passes of the 3 full-size iterations; never in the whole run
    assert released[0] == 3 and len(released) == 1 + 3 * 2 * len(tiling.boxes)
    diff = (tiled.tensor - whole.tensor).abs()
    assert diff.mean() < 0.05 and diff.max() < 2, (diff.mean(), diff.max())  # of 255: the same picture


def test_a_tiled_run_keeps_the_histogram_term_to_its_whole_picture_level(shared, monkeypatch) -> None:
    photo, painting = shared / "images/content/chelsea.png", shared / "images/style/munch_the_scream.jpg"
    config = SHALLOW.with_(size=240, histogram_weight=2.0)
    w, h = images.fit_size(images.load(photo).size, 240)
    seen, call = [], losses.HistogramTerm.__call__
    monkeypatch.setattr(losses.HistogramTerm, "__call__",
                        lambda self, feats, image: seen.append(tuple(image.shape[-2:])) or call(self, feats, image))
    result = Stylizer(config, max_memory=budget_for(config, w, h, 144)).run(photo, painting, seed=0)
    assert result.iterations == 6 and not result.interrupted
    assert seen and set(seen) == {(round(h / 2), round(w / 2))}  # the half-size solve only, never a tile


def test_a_picture_that_fits_only_without_the_histogram_term_is_solved_whole_without_it(shared, monkeypatch) -> None:
    """Tiles would go without the term too; whole, the full size is exact and sooner. whole=True (as video asks)
    would refuse a tiled picture."""
    photo, painting = shared / "images/content/chelsea.png", shared / "images/style/munch_the_scream.jpg"
    config = SHALLOW.with_(size=240, histogram_weight=2.0)
    w, h = images.fit_size(images.load(photo).size, 240)
    bare = config.with_(histogram_weight=0.0)
    lean, full = (memory.estimate(w, h, c, torch.float32) for c in (bare, config))
    seen, call = [], losses.HistogramTerm.__call__
    monkeypatch.setattr(losses.HistogramTerm, "__call__",
                        lambda self, feats, image: seen.append(tuple(image.shape[-2:])) or call(self, feats, image))
    stylizer, tiled = Stylizer(config, max_memory=(lean + full) // 2), []
    for recipe in (config, config.with_(optimizer="gd")):  # two memory models: with and without L-BFGS pairs
        least = memory.estimate(w, h, recipe.with_(histogram_weight=0.0), torch.float32)
        assert tiles.choose(w, h, recipe, torch.float32, memory.Budget(least, "", "")) is None  # no tiles, no refusal
        assert tiles.bare(w, h, recipe, torch.float32, memory.Budget(least, "", ""))
        assert not tiles.bare(w, h, recipe, torch.float32, memory.Budget(least - 1, "", ""))
    result = stylizer.run(photo, painting, seed=0, whole=True, callback=lambda _: tiled.append(stylizer.tiling))
    assert result.iterations == 6 and result.partial is None and tiled == [None] * 6
    assert set(seen) == {(round(h / 2), round(w / 2))}  # the half-size level keeps the term, the full size not
    fits = memory.largest_side(w, h, bare, torch.float32, lean - 1)  # the size that fits without the term
    with pytest.raises(memory.MemoryLimitError, match=f"whole .* --size {fits} fits"):  # below even the lean need
        Stylizer(config, max_memory=lean - 1).run(photo, painting, seed=0, whole=True)


def test_ctrl_c_at_full_size_keeps_the_picture_and_what_is_left(tiled_runs) -> None:
    _, _, stopped, _, tiling, _ = tiled_runs
    assert stopped.interrupted and stopped.iterations == 5
    # steps 4 and 5 were evaluated; the picture kept is step 5's, which holds one full-size update (a step
    # reports the picture it was evaluated at, before its own update): one of the three is done
    # the default's style goal steers the weights, so the record keeps them: the start's, as the stop came
    # before the first adjustment
    assert stopped.partial == tiles.Partial(tiling, 1, (SHALLOW.content_weight, SHALLOW.style_weight))
    assert stopped.image.size == (tiling.width, tiling.height)


def test_ctrl_c_at_full_size_then_resume_finishes_the_picture(tmp_path, shared, monkeypatch, capsys) -> None:
    from brushwork import optimise
    from brushwork.cli import main

    photo, painting = shared / "images/content/chelsea.png", shared / "images/style/munch_the_scream.jpg"
    w, h = images.fit_size(images.load(photo).size, 160)
    out = tmp_path / "print.png"
    args = ["stylize", str(photo), "--style", str(painting), "-o", str(out), "--size", "160", "--iterations", "3",
            "--pyramid", "0.5", "--pyramid-iterations", "2", "--content-layers", "relu2_2",
            "--style-layers", "relu1_1,relu2_1,relu3_1", "--precision", "float32", "--seed", "0", "-q",
            "--max-memory", f"{math.ceil(budget_for(SHALLOW, w, h, 96) / 1e3)}K"]  # 96 px windows: no less
    real, calls = optimise.Stylizer._optimise, []

    def stop_after_one(self, x, terms, iterations):
        steps = real(self, x, terms, iterations)
        if self.tiling is None:
            return steps
        calls.append(iterations)
        return (step if k == 0 else (_ for _ in ()).throw(KeyboardInterrupt) for k, step in enumerate(steps))

    monkeypatch.setattr(optimise.Stylizer, "_optimise", stop_after_one)
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "0 of 3 full-size iterations done" in err and "--resume" in err and calls == [3]  # step 1: the start
    assert out.is_file() and tiles.partial_path(out).is_file()
    monkeypatch.setattr(optimise.Stylizer, "_optimise", real)
    assert main([*args[:-2], "--max-memory", "64G", "--resume", "--iterations", "4"]) == 1  # other settings
    assert "other inputs or settings" in capsys.readouterr().err
    calls.clear()
    monkeypatch.setattr(optimise.Stylizer, "_optimise",
                        lambda self, x, terms, n: calls.append((n, self.tiling is not None)) or real(self, x, terms, n))
    assert main([*args, "--resume"]) == 0  # the plan is the recorded one, whatever the memory now
    assert calls == [(3, True)] and not tiles.partial_path(out).exists()  # only the full-size iterations left
    assert main([*args, "--resume"]) == 1  # nothing left to resume
    assert "no stopped print-size run" in capsys.readouterr().err


def test_a_stopped_print_keeps_its_steered_weights_for_the_resume(tmp_path) -> None:
    """A --strength run steers its style weight; the rest of a stopped print must go on with the weights it
    had reached, not start the steering afresh (tiles.Partial.weights, written beside the picture)."""
    out = tmp_path / "print.png"
    images.save(Image.new("RGB", (400, 300)), out)  # the picture so far
    partial = tiles.Partial(tiles.Tiling(300, 400, 96, 24, 5), 2, (1.0, 1.37))
    tiles.write_partial(out, partial, "key")
    assert tiles.read_partial(out, "key") == partial
    tiles.write_partial(out, tiles.Partial(partial.tiling, 2), "key")
    assert tiles.read_partial(out, "key").weights is None


def test_the_plan_ignores_the_histogram_term_the_tiles_never_run() -> None:
    import torch

    from brushwork import memory, presets

    limit = memory.Budget(5 * 10**9, "5 GB (test)", "")
    plain = tiles.plan(3000, 3000, presets.DEFAULT, torch.bfloat16, limit)
    assert tiles.plan(3000, 3000, presets.DEFAULT.with_(histogram_weight=2.0), torch.bfloat16, limit) == plain

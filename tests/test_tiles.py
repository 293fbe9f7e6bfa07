"""Print sizes (issue 13): a whole-picture solve that fits, then tiles at full size against style targets of
the whole picture, blended; forced here through a small memory budget, with tiny tiles and a shallow
network so that each test takes a second or two."""

from __future__ import annotations

import math
import re

import pytest
import torch

from brushwork import Stylizer, images, memory, presets, tiles
from brushwork.losses import gram
from brushwork.perceptual import Perceptual
from brushwork.weights import load_weights

SHALLOW = presets.DEFAULT.with_(precision="float32", content_layers=("relu2_2",),
                                style_layers=("relu1_1", "relu2_1", "relu3_1"), pyramid=(0.5,),
                                pyramid_iterations=(3,), pyramid_px=0, iterations=3, size=160)


def budget_for(config: presets.Config, width: int, height: int, window: int) -> int:
    """Bytes that hold the full-size buffers and one window of side `window`, not the whole picture."""
    return tiles.FULL_PER_PIXEL * width * height + memory.estimate(window, window, config.with_(style_scale=1.0),
                                                                   torch.float32)


def test_receptive_fields_of_vgg16() -> None:
    assert tiles.receptive_field(tiles.network_layers(presets.DEFAULT)) == (132, 16)  # relu5_1
    assert tiles.receptive_field(tiles.network_layers(SHALLOW)) == (24, 4)  # relu3_1


@pytest.mark.parametrize("window", [100, 120, 200])
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
    limit = memory.Budget(8_000_000_000 if window is None else budget_for(config, width, height, window), "", "")
    margin = tiles.plan(width // 4, height // 4, config, torch.float32, memory.Budget(10**12, "", "")).margin
    with pytest.raises(memory.MemoryLimitError, match=rf"tiles of {2 * margin} px") as err:
        tiles.choose(width, height, config, torch.float32, limit)
    fits = int(re.search(r"--size (\d+) fits", str(err.value))[1])
    tiling = tiles.plan(fits, round(fits * height / width), config, torch.float32, limit)
    assert tiling.core >= 2 * tiling.margin == 2 * margin


def test_tiled_grams_equal_the_whole_pictures() -> None:
    net = Perceptual(SHALLOW, load_weights())
    image = torch.rand(1, 3, 100, 136) * 255
    feats = lambda t: net.features(t, SHALLOW.style_layers, exact=True)  # noqa: E731
    tiling = tiles.Tiling(100, 136, core=32, margin=24)
    tiled = tiles.grams(feats, image, tiling, net.net.names)
    with torch.no_grad():
        whole = {k: gram(f) for k, f in feats(image).items()}
    for layer in whole:
        assert torch.allclose(tiled[layer], whole[layer], rtol=1e-3, atol=1e-2), layer


def test_blend_weights_rise_from_the_window_edge_to_the_tile() -> None:
    tiling = tiles.Tiling(64, 96, core=32, margin=16)
    box = (0, 32, 32, 64)  # top row, middle column: neighbours left, right and below, the picture's edge above
    w = tiling.blend_weights(box, torch.device("cpu"))[0, 0]
    assert w.shape == (48, 64)  # rows 0..48, columns 16..80
    assert bool((w[:32, 16:48] == 1).all())  # the tile's own square
    assert w[0, 0] < 0.1 and w[0, -1] < 0.1 and w[-1, 32] < 0.1  # towards neighbours: almost nothing
    assert w[0, 32] == 1  # towards the picture's edge: no fall
    assert bool((w[16, :16].diff() > 0).all())  # a linear rise, no step


@pytest.fixture(scope="module")
def tiled_runs(shared):
    """The same run tiled (a budget that holds 96 px windows) and whole, and stopped at tiles 1 and 3."""
    photo, painting = shared / "images/content/chelsea.png", shared / "images/style/munch_the_scream.jpg"
    w, h = images.fit_size(images.load(photo).size, 160)
    small = Stylizer(SHALLOW, max_memory=budget_for(SHALLOW, w, h, 96))
    steps = []
    tiled = small.run(photo, painting, seed=0, callback=steps.append)
    whole = Stylizer(SHALLOW).run(photo, painting, seed=0)

    def stop_at(tile: int):
        def callback(step) -> None:
            if step.tile is not None and step.tile[0] == tile:
                raise KeyboardInterrupt
        return callback

    stopped = [small.run(photo, painting, seed=0, callback=stop_at(tile)) for tile in (1, 3)]
    tiling = tiles.choose(w, h, SHALLOW, small.dtype, memory.budget(small.device, small.max_memory))
    return tiled, whole, stopped, steps, tiling


def test_a_tiled_run_covers_the_picture_with_one_progress_count(tiled_runs) -> None:
    tiled, whole, _, steps, tiling = tiled_runs
    assert tiled.image.size == whole.image.size and not tiled.interrupted
    count = len(tiling.boxes)
    assert 6 <= count <= 20
    assert [s.iteration for s in steps] == list(range(1, len(steps) + 1)) and steps[-1].total == len(steps)
    assert len(steps) == 3 + 3 * count  # the half-size solve, then every tile
    assert [s.tile for s in steps[3:]] == [(k, count) for k in range(1, count + 1) for _ in range(3)]
    assert max(max(s.image.shape[-2:]) for s in steps[3:]) <= 96  # tiles, not the picture


def test_tiles_refine_the_picture_without_drifting_from_the_whole_run(tiled_runs) -> None:
    tiled, whole, _, _, _ = tiled_runs
    diff = (tiled.tensor - whole.tensor).abs().mean().item()
    assert diff < 12, diff  # of 255: the same picture, not a mosaic or a colour shift
    assert (tiled.tensor.mean((-2, -1)) - whole.tensor.mean((-2, -1))).abs().max().item() < 4


def test_ctrl_c_keeps_the_finished_tiles(tiled_runs) -> None:
    """Stopped during tile 3: tiles 1 and 2 are in the picture, nothing of tile 3 or later (the same
    pixels there as a run stopped before any tile finished: the whole-picture solve, upsampled)."""
    _, _, (none, two), _, tiling = tiled_runs
    assert none.interrupted and two.interrupted and two.iterations == 3 + 2 * 3 + 1
    first, last = tiling.boxes[0], tiling.boxes[-1]
    crop = lambda t, b: t[..., b[0]:b[2], b[1]:b[3]]  # noqa: E731
    assert (crop(two.tensor, first) - crop(none.tensor, first)).abs().mean() > 0.01  # tile 1 refined (3 small steps)
    assert torch.equal(crop(two.tensor, last), crop(none.tensor, last))  # the last not started


def test_ctrl_c_between_tiles_then_resume_finishes_the_picture(tmp_path, shared, monkeypatch, capsys) -> None:
    from brushwork import optimise
    from brushwork.cli import main

    photo, painting = shared / "images/content/chelsea.png", shared / "images/style/munch_the_scream.jpg"
    w, h = images.fit_size(images.load(photo).size, 160)
    out = tmp_path / "print.png"
    args = ["stylize", str(photo), "--style", str(painting), "-o", str(out), "--size", "160", "--iterations", "2",
            "--pyramid", "0.5", "--pyramid-iterations", "2", "--content-layers", "relu2_2",
            "--style-layers", "relu1_1,relu2_1,relu3_1", "--precision", "float32", "--seed", "0", "-q",
            "--max-memory", f"{math.ceil(budget_for(SHALLOW, w, h, 96) / 1e3)}K"]  # 96 px windows: no less
    real, calls = optimise.Stylizer._optimise, []

    def stop_in_third_tile(self, x, terms, iterations):
        calls.append(x.shape)
        if len(calls) == 4:  # the half-size solve, tiles 1 and 2, then Ctrl-C in tile 3
            raise KeyboardInterrupt
        return real(self, x, terms, iterations)

    monkeypatch.setattr(optimise.Stylizer, "_optimise", stop_in_third_tile)
    assert main(args) == 130
    err = capsys.readouterr().err
    count = len(tiles.choose(w, h, SHALLOW, torch.float32, memory.Budget(budget_for(SHALLOW, w, h, 96), "", "")).boxes)
    assert f"2 of {count} tiles finished" in err and "--resume" in err
    assert out.is_file() and tiles.partial_path(out).is_file()
    monkeypatch.setattr(optimise.Stylizer, "_optimise", real)
    assert main([*args[:-2], "--max-memory", "64G", "--resume", "--iterations", "3"]) == 1  # other settings
    assert "other inputs or settings" in capsys.readouterr().err
    calls.clear()
    monkeypatch.setattr(optimise.Stylizer, "_optimise", lambda self, *a: calls.append(1) or real(self, *a))
    assert main([*args, "--resume"]) == 0  # the plan is the recorded one, whatever the memory now
    assert len(calls) == count - 2 and not tiles.partial_path(out).exists()  # only the tiles left
    assert main([*args, "--resume"]) == 1  # nothing left to resume
    assert "no stopped print-size run" in capsys.readouterr().err

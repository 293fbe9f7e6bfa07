"""Spatial control (Gatys et al. 2017): each style in its own region, soft masks, and a region kept close
to the photo; with the bad inputs of issue 13 (masks resized; not an image, empty, or a count that differs
from the styles: one line, non-zero exit)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork import Stylizer, images, memory, presets
from brushwork.cli import main
from brushwork.losses import gram, masked_gram, resize_mask

SIZE = 64


def save(arr: np.ndarray, path) -> str:
    Image.fromarray(arr.astype(np.uint8)).save(path)
    return str(path)


@pytest.fixture
def pictures(tmp_path):
    """A grey photo with some texture, a red and a blue painting, and left/right masks (half size: resized)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    photo = np.stack([100 + 40 * np.sin(x / 5), 110 + 40 * np.cos(y / 4), 105 + 0 * x], -1) + rng.normal(0, 5, (48, 64, 3))
    stripes = (np.sin(np.mgrid[0:64, 0:64][1] / 2) > 0)[..., None]
    red = np.where(stripes, [230, 40, 30], [250, 200, 60])
    blue = np.where(stripes, [20, 40, 220], [40, 180, 200])
    left = np.zeros((24, 32), np.uint8)
    left[:, :16] = 255
    return {"photo": save(photo.clip(0, 255), tmp_path / "photo.png"), "red": save(red, tmp_path / "red.png"),
            "blue": save(blue, tmp_path / "blue.png"), "left": save(left, tmp_path / "left.png"),
            "right": save(255 - left, tmp_path / "right.png"), "dir": tmp_path}


def test_a_masked_gram_is_the_gram_of_its_region() -> None:
    f = torch.randn(1, 8, 6, 10)
    mask = torch.zeros(1, 1, 6, 10)
    mask[..., :4] = 1
    assert torch.allclose(masked_gram(f, torch.ones(1, 1, 6, 10)), gram(f), atol=1e-5)
    assert torch.allclose(masked_gram(f, mask), gram(f[..., :4].contiguous()), atol=1e-5)


def test_masks_shrink_to_the_share_of_each_cell() -> None:
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :3] = 1
    small = resize_mask(mask, (2, 2))
    assert torch.allclose(small, torch.tensor([[[[0.75, 0.0], [0.75, 0.0]]]]))


def redness(result) -> tuple[float, float]:
    """Mean red minus blue of the left and the right half (the middle 8 columns left out)."""
    arr = np.asarray(result.image, dtype=np.float32)
    diff = arr[..., 0] - arr[..., 2]
    w = arr.shape[1]
    return float(diff[:, : w // 2 - 4].mean()), float(diff[:, w // 2 + 4:].mean())


@pytest.fixture
def strong(fast):
    """Enough style to move colours in 20 iterations at 64 px."""
    return Stylizer(fast.with_(size=SIZE, iterations=20, style_weight=10.0))


def test_each_style_paints_its_own_region(pictures, strong) -> None:
    p = pictures
    left, right = redness(strong.run(p["photo"], [p["red"], p["blue"]], masks=[p["left"], p["right"]], seed=0))
    assert left - right > 40, (left, right)  # measured 21 against -47
    left, right = redness(strong.run(p["photo"], [p["red"], p["blue"]], masks=[p["right"], p["left"]], seed=0))
    assert right - left > 40, (left, right)  # swapped masks, swapped sides


def test_a_soft_mask_blends_across_the_image(pictures, strong) -> None:
    """A left-to-right ramp and its complement: red fades into blue, without a step in the middle."""
    p = pictures
    ramp = np.tile(np.linspace(255, 0, 64), (48, 1))
    masks = [save(ramp, p["dir"] / "ramp.png"), save(255 - ramp, p["dir"] / "ramp2.png")]
    result = strong.run(p["photo"], [p["red"], p["blue"]], masks=masks, seed=0)
    arr = np.asarray(result.image, dtype=np.float32)
    redness = (arr[..., 0] - arr[..., 2]).mean(0)  # per column
    thirds = [redness[i * 21:(i + 1) * 21].mean() for i in range(3)]
    assert thirds[0] > thirds[1] > thirds[2], thirds


def test_a_keep_mask_holds_its_region_to_the_photo(pictures, strong) -> None:
    """The kept half stays at the photo; the other is painted. (At 64 px the deep layers see the whole
    picture, so the kept half's pull reaches the other too, less: measured 1% and 40% of the plain
    run's squared error.)"""
    p = pictures
    plain = strong.run(p["photo"], [p["red"]], seed=0)
    kept = strong.run(p["photo"], [p["red"]], keep_mask=p["left"], seed=0)
    photo = images.to_tensor(images.load(p["photo"]))
    ratio = [((kept.tensor - photo)[..., cols] ** 2).mean().item() / ((plain.tensor - photo)[..., cols] ** 2).mean().item()
             for cols in (slice(0, 24), slice(40, 64))]
    assert ratio[0] < 0.1 and ratio[0] < 0.2 * ratio[1], ratio


def run_cli(p, *extra) -> int:
    return main(["stylize", p["photo"], "--style", p["red"], p["blue"], "-o", str(p["dir"] / "out.png"),
                 "--size", "32", "--iterations", "1", "--pyramid", "", "--precision", "float32", "-q", *extra])


def test_masks_of_another_size_are_resized(pictures) -> None:
    assert run_cli(pictures, "--mask", pictures["left"], pictures["right"]) == 0  # 32x24 masks, 64x48 photo
    assert (pictures["dir"] / "out.png").is_file()


@pytest.mark.parametrize("case, words", [
    ("not an image", "not an image"), ("empty", "mask is empty"), ("one mask", "1 mask(s) for 2 style"),
    ("missing", "no such file"), ("keep empty", "mask is empty")])
def test_bad_masks_are_one_line(pictures, capsys, case, words) -> None:
    p = pictures
    (p["dir"] / "notes.png").write_text("not a picture")
    black = save(np.zeros((8, 8)), p["dir"] / "black.png")
    masks = {"not an image": ["--mask", p["left"], str(p["dir"] / "notes.png")],
             "empty": ["--mask", p["left"], black], "one mask": ["--mask", p["left"]],
             "missing": ["--mask", p["left"], str(p["dir"] / "nope.png")], "keep empty": ["--keep-mask", black]}
    assert run_cli(p, *masks[case]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not (p["dir"] / "out.png").exists()


def test_masked_regions_count_in_the_memory_plan(pictures) -> None:
    """Each region keeps a masked copy of every style layer's features: a budget that holds the plain run
    must not be taken as holding two regions (peak at 512 px, float32: 1.29 GB against 1.10 GB plain)."""
    config = presets.SUBTLE.with_(size=SIZE, iterations=1, pyramid=(), pyramid_iterations=(), precision="float32")
    plain = memory.estimate(512, 512, config, torch.float32)
    extra = memory.estimate(512, 512, config, torch.float32, regions=2) - plain
    assert 0.19e9 <= extra <= 0.3e9  # measured: 0.19 GB here, 0.26 GB in another run
    stylizer = Stylizer(config, max_memory=memory.estimate(64, 48, config, torch.float32) + 1000)
    steps = []
    with pytest.raises(memory.MemoryLimitError, match="even in tiles"):
        stylizer.run(pictures["photo"], [pictures["red"], pictures["blue"]], seed=0, callback=steps.append,
                     masks=[pictures["left"], pictures["right"]])
    assert steps == []  # refused before any work

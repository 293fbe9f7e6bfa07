from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork import images
from brushwork.images import ImageError


def test_grey_and_rgba_become_rgb(tmp_path: Path) -> None:
    Image.new("L", (10, 8), 77).save(tmp_path / "g.png")
    rgba = Image.new("RGBA", (10, 8), (255, 0, 0, 0))
    rgba.save(tmp_path / "a.png")
    grey = images.load(tmp_path / "g.png")
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (77, 77, 77)
    # fully transparent pixels become white paper, not black
    assert images.load(tmp_path / "a.png").getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 0, 0), (0, 0, 10, 20))  # red strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "r.jpg", exif=exif)
    loaded = images.load(tmp_path / "r.jpg")
    assert loaded.size == (20, 40)
    r, g, b = loaded.getpixel((10, 2))  # the left strip is now at the top
    assert r > 200 and g < 60


@pytest.mark.parametrize("make, match", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "folder"),
    (lambda p: p.write_text("hello"), "not an image"),
    (lambda p: p.write_bytes(_png_bytes()[:200]), "truncated"),
    (lambda p: Image.new("RGB", (1, 1)).save(p, "PNG"), "at least 2x2"),
])
def test_bad_inputs_name_the_file(tmp_path: Path, make, match: str) -> None:
    path = tmp_path / "in.png"
    make(path)
    with pytest.raises(ImageError, match=match) as err:
        images.load(path)
    assert str(path) in str(err.value)


def _png_bytes() -> bytes:
    import io
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch) -> None:
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    with pytest.raises(ImageError, match="too many pixels"):
        images.load(tmp_path / "big.png")
    assert Image.MAX_IMAGE_PIXELS != 10_000  # the limit was ours for that one file, not left behind


def test_fit_keeps_aspect_ratio() -> None:
    assert images.fit(Image.new("RGB", (451, 300)), 64).size == (64, 43)
    assert images.fit(Image.new("RGB", (300, 451)), 64).size == (43, 64)


def test_save_is_atomic_and_checks_the_folder(tmp_path: Path, monkeypatch) -> None:
    t = torch.full((1, 3, 4, 4), 300.0)  # out of range: clamped on save
    out = images.save(t, tmp_path / "x.png")
    assert Image.open(out).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(ImageError, match="does not exist"):
        images.save(t, tmp_path / "missing" / "x.png")
    with pytest.raises(ImageError, match="extension"):
        images.save(t, tmp_path / "x.unknown")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(ImageError, match="y.png: could not be written \\(disk full\\)"):
        images.save(t, tmp_path / "y.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]  # no partial file left


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(ImageError, match="not writable"):
        images.check_writable(ro / "x.png")


def test_histogram_matching_moves_colour_statistics() -> None:
    g = torch.Generator().manual_seed(0)
    src = torch.rand(1, 3, 32, 32, generator=g) * 100
    tgt = torch.rand(1, 3, 32, 32, generator=g) * 50 + torch.tensor([150.0, 40.0, 90.0]).view(1, 3, 1, 1)
    out = images.match_histogram(src, tgt)
    assert torch.allclose(out.mean((0, 2, 3)), tgt.mean((0, 2, 3)), atol=1.0)
    assert torch.allclose(torch.cov(out.reshape(3, -1)), torch.cov(tgt.reshape(3, -1)), rtol=0.05, atol=2.0)


def test_luminance_transfer_keeps_content_colour() -> None:
    stylised = torch.full((1, 3, 8, 8), 100.0)
    content = torch.zeros(1, 3, 8, 8)
    content[:, 0] = 200  # red photo
    out = images.luminance_transfer(stylised, content)
    lum = lambda t: (0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]).mean()  # noqa: E731
    assert abs(lum(out) - 100) < 2  # brightness from the stylised image
    assert out[0, 0].mean() > out[0, 1].mean() + 50  # hue from the photo

"""Shared fixtures: paths to the shared media, tiny synthetic images, a small fast config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brushwork import presets

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "images").is_dir():
        pytest.skip(f"shared media not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def content_path(shared: Path) -> Path:
    return shared / "images/content/chelsea.png"


@pytest.fixture(scope="session")
def style_path(shared: Path) -> Path:
    return shared / "images/style/vangogh_starry_night.jpg"


@pytest.fixture
def tiny_rgb(tmp_path: Path) -> Path:
    """A 40x30 RGB gradient image."""
    y, x = np.mgrid[0:30, 0:40]
    arr = np.stack([x * 6, y * 8, (x + y) * 3], -1).astype(np.uint8)
    path = tmp_path / "tiny.png"
    Image.fromarray(arr, "RGB").save(path)
    return path


@pytest.fixture
def fast() -> presets.Config:
    """The default recipe at a size and length that runs in about a second on a CPU."""
    return presets.DEFAULT.with_(size=48, iterations=4, precision="float32", pyramid=(), pyramid_iterations=())


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    """Three smooth random photos in nested folders, and one unreadable file: a training set."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i, sub in enumerate(["", "a", "a/b"]):
        (root / sub).mkdir(parents=True, exist_ok=True)
        small = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
        Image.fromarray(small).resize((160, 120), Image.BICUBIC).save(root / sub / f"p{i}.jpg")
    (root / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.fixture
def failing_ffmpeg(tmp_path: Path, monkeypatch):
    """Make brushwork's ffmpeg fail its encodes with `message` (a full disk) after reading `reads` bytes of
    piped frames; probing and decoding still work."""
    from brushwork import video

    real = video.ffmpeg_exe()

    def install(message: str, reads: int = 0) -> None:
        fake = tmp_path / "ffmpeg"
        fake.write_text(f'#!/bin/sh\ncase "$*" in *libx264*) head -c {reads} >/dev/null; echo "{message}" >&2; '
                        f'exit 1;; esac\nexec "{real}" "$@"\n')
        fake.chmod(0o755)
        monkeypatch.setattr(video, "ffmpeg_exe", lambda: str(fake))
    return install

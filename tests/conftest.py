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

"""Training photos: any folder, searched recursively, served as random crops at random scales.

A batch is a pure function of (seed, step), so a resumed run sees exactly the batches the interrupted
one would have, with no sampler state to save.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch
from PIL import Image

from .. import images

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def find_photos(folder: str | os.PathLike, exclude: set[Path] = frozenset()) -> list[Path]:
    """Every image file under `folder` (sorted, so a run's choices are reproducible), minus `exclude`."""
    root = Path(folder)
    if not root.is_dir():
        raise images.ImageError(f"{root}: no such folder; point --photos at a folder of photographs")
    skip = {p.resolve() for p in exclude}
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
                   and p.resolve() not in skip)
    if not found:
        raise images.ImageError(f"{root}: no photos found (searched all subfolders for "
                                f"{', '.join(sorted(EXTENSIONS))}); point --photos at a folder of photographs")
    return found


class Crops:
    """Random square crops of `size` pixels: a region covering `scale` (a random fraction) of a photo's
    shorter side, resized to `size`, mirrored half the time. Unreadable files are dropped and counted."""

    def __init__(self, photos: list[Path], size: int, *, seed: int = 0, scale: tuple[float, float] = (0.4, 1.0)):
        self.photos, self.size, self.seed, self.scale = list(photos), size, seed, scale
        self.unreadable: set[Path] = set()

    @property
    def skipped(self) -> list[Path]:
        return sorted(self.unreadable)

    def _open(self, rng: random.Random) -> Image.Image:
        # An unreadable draw is redrawn whether or not it was known bad, so which photos a step gets depends
        # only on (seed, step) and the files, not on what earlier steps of this process happened to try.
        while len(self.unreadable) < len(self.photos):
            path = self.photos[rng.randrange(len(self.photos))]
            if path in self.unreadable:
                continue
            try:
                return images.load(path)
            except images.ImageError:
                self.unreadable.add(path)
        raise images.ImageError(f"none of the {len(self.photos)} photos could be read (e.g. {self.photos[0]}); "
                                f"point --photos at a folder of readable photographs")

    def crop(self, img: Image.Image, rng: random.Random) -> Image.Image:
        w, h = img.size
        side = max(2, round(min(w, h) * rng.uniform(*self.scale)))
        x, y = rng.randint(0, w - side), rng.randint(0, h - side)
        out = img.resize((self.size, self.size), Image.BICUBIC, box=(x, y, x + side, y + side), reducing_gap=2.0)
        return out.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else out

    def batch(self, step: int, n: int) -> torch.Tensor:
        """(n, 3, size, size) pixels for training step `step`."""
        rng = random.Random(self.seed * 1_000_003 + step)
        return torch.cat([images.to_tensor(self.crop(self._open(rng), rng)) for _ in range(n)])

"""Make the second benchmark clip: a fast pan, zoom and turn across a public-domain photo.

The cockatoo clip moves about 12 px a frame at 1280x720; this one moves a virtual camera across NASA's
astronaut portrait (public domain; `shared/images/content/astronaut.png`, 512x512, see its SOURCES.md) at
about 15-25 px a frame at 480x270 (4-6 px at 128 px wide, three to five times the cockatoo's), zooming in by half and turning 8 degrees
over 24 frames, so the whole frame moves, edges disocclude every frame, and motion is never still.

    python benchmarks/make_pan_clip.py benchmarks/clips/astronaut_pan.mp4

Each frame is the photo resampled once (bicubic, Pillow's affine transform) from the original pixels, so
no frame inherits another's blur; encoded H.264 yuv420p CRF 16 at 20 fps with the ffmpeg that brushwork's
video extra brings (imageio-ffmpeg).
"""

from __future__ import annotations

import argparse
import math
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from brushwork.video import ffmpeg_exe

WIDTH, HEIGHT, FPS = 480, 270, 20
PHOTO = Path(__file__).resolve().parents[2] / "shared" / "images" / "content" / "astronaut.png"


def frame(photo: Image.Image, t: float) -> np.ndarray:
    """The view at time t in [0, 1]: centre moves from upper left to lower right, zoom 1.0 -> 1.5,
    turn 0 -> 8 degrees. Returns (HEIGHT, WIDTH, 3) uint8."""
    sw, sh = photo.size
    zoom = 1.0 + 0.5 * t
    scale = 0.62 * sw / WIDTH / zoom  # source pixels per output pixel (about 1/2 at the start)
    angle = math.radians(8.0 * t)
    cx, cy = sw * (0.32 + 0.36 * t), sh * (0.30 + 0.40 * t)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    # output (x, y) -> source (a x + b y + c, d x + e y + f), centred on the view's centre
    ox, oy = WIDTH / 2, HEIGHT / 2
    coeffs = (cos, -sin, cx - cos * ox + sin * oy, sin, cos, cy - sin * ox - cos * oy)
    return np.asarray(photo.transform((WIDTH, HEIGHT), Image.AFFINE, coeffs, Image.BICUBIC))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("output", type=Path)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--photo", type=Path, default=PHOTO)
    args = p.parse_args()
    photo = Image.open(args.photo).convert("RGB")
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}",
           "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "16",
           "-preset", "slow", "-movflags", "+faststart", str(args.output)]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(frame(photo, i / (args.frames - 1)).tobytes() for i in range(args.frames))
    subprocess.run(cmd, input=data, check=True)
    print(args.output)


if __name__ == "__main__":
    main()

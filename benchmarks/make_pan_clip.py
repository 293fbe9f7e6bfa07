"""Make the second benchmark clip: a fast pan, zoom and turn across a public-domain photo.

The cockatoo clip moves about 12 px a frame at 1280x720; this one moves a virtual camera across NASA's
astronaut portrait (public domain; `benchmarks/images/astronaut.png`, 512x512, see SOURCES.md there) at
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
PHOTO = Path(__file__).resolve().parent / "images" / "astronaut.png"  # = shared/images/content/astronaut.png


def view(source: tuple[int, int], t: float) -> np.ndarray:
    """The camera at time t in [0, 1] as a 2x3 affine map from output to photo coordinates: the centre
    moves from upper left to lower right, zoom 1.0 -> 1.5, turn 0 -> 8 degrees."""
    sw, sh = source
    zoom = 1.0 + 0.5 * t
    scale = 0.62 * sw / WIDTH / zoom  # source pixels per output pixel (about 1/2 at the start)
    angle = math.radians(8.0 * t)
    cx, cy = sw * (0.32 + 0.36 * t), sh * (0.30 + 0.40 * t)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    # output (x, y) -> source (a x + b y + c, d x + e y + f), centred on the view's centre
    ox, oy = WIDTH / 2, HEIGHT / 2
    return np.array([[cos, -sin, cx - cos * ox + sin * oy], [sin, cos, cy - sin * ox - cos * oy]])


def frame(photo: Image.Image, t: float, size: tuple[int, int] = (WIDTH, HEIGHT),
          source: tuple[int, int] | None = None) -> np.ndarray:
    """The photo seen by the camera at time t: (height, width, 3) uint8.

    `size` renders the same view at another resolution, and `source` is the size of the photo the camera
    path was made for, when `photo` is a resized copy of it (a painting of it, say).
    """
    m = view(source or photo.size, t)
    m = np.diag([photo.size[0] / (source or photo.size)[0], photo.size[1] / (source or photo.size)[1]]) @ m
    m = m @ np.diag([WIDTH / size[0], HEIGHT / size[1], 1.0])
    return np.asarray(photo.transform(size, Image.AFFINE, tuple(m.ravel()), Image.BICUBIC))


def true_flow(source: tuple[int, int], t_from: float, t_to: float) -> np.ndarray:
    """The exact flow f with frame(t_from)(x) = frame(t_to)(x + f(x)): (HEIGHT, WIDTH, 2) float32.

    Both frames sample the photo through their affine maps (Pillow's, in pixel-centre coordinates), so
    x in one frame and the point of the other that shows the same photo point differ by an affine map.
    """
    a, b = view(source, t_from), view(source, t_to)
    gx, gy = np.meshgrid(np.arange(WIDTH) + 0.5, np.arange(HEIGHT) + 0.5)
    points = np.stack([gx, gy, np.ones_like(gx)], -1)  # pixel centres
    photo_xy = points @ a.T
    there = (photo_xy - b[:, 2]) @ np.linalg.inv(b[:, :2]).T
    return (there - points[..., :2]).astype(np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("output", type=Path, nargs="?", help="the clip to write (not needed with --painted)")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--photo", type=Path, default=PHOTO)
    p.add_argument("--painted", type=Path, nargs=2, metavar=("PAINTING", "FOLDER"),
                   help="instead of the clip, write the camera's path across PAINTING (a stylised copy of the "
                   "photo) as frames into FOLDER: a perfectly consistent painted video, the judges' floor")
    p.add_argument("--painted-size", type=int, default=128, help="longest side of those frames")
    p.add_argument("--truth", type=Path, help="also write the exact flows between consecutive frames here "
                   "(.npz: back[t] from frame t to t-1, fore[t] from t-1 to t), for flow_judge.py --truth")
    args = p.parse_args()
    photo = Image.open(args.photo).convert("RGB")
    if args.painted:
        painting, folder = Image.open(args.painted[0]).convert("RGB"), args.painted[1]
        folder.mkdir(parents=True, exist_ok=True)
        size = (args.painted_size, round(args.painted_size * HEIGHT / WIDTH / 2) * 2)
        for i in range(args.frames):
            Image.fromarray(frame(painting, i / (args.frames - 1), size, photo.size)).save(folder / f"{i:06d}.png")
        print(folder)
        return
    if args.output is None:
        p.error("give the clip's output path (or --painted)")
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}",
           "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "16",
           "-preset", "slow", "-movflags", "+faststart", str(args.output)]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(frame(photo, i / (args.frames - 1)).tobytes() for i in range(args.frames))
    subprocess.run(cmd, input=data, check=True)
    if args.truth:
        ts = [i / (args.frames - 1) for i in range(args.frames)]
        np.savez_compressed(args.truth,
                            back=np.stack([true_flow(photo.size, ts[i], ts[i - 1]) for i in range(1, args.frames)]),
                            fore=np.stack([true_flow(photo.size, ts[i - 1], ts[i]) for i in range(1, args.frames)]))
    print(args.output)


if __name__ == "__main__":
    main()

"""Images in and out: loading (EXIF, grey, alpha, bombs), resizing, colour transfer, atomic saving.

Pixel space everywhere in brushwork: float tensors, RGB, 0-255, shape (1, 3, H, W).
"""

from __future__ import annotations

import errno
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from . import whitening
from .errors import BrushworkError

MAX_PIXELS = 10_000 * 10_000  # larger than any sensible input; beyond it we suspect a decompression bomb
# Formats Pillow decodes in Python (RLE BMP, ...) take seconds per 10 megapixels: a tiny file claiming
# more can hold the loader for minutes.
MAX_SLOW_PIXELS = 4096 * 4096


class ImageError(BrushworkError, ValueError):
    """A user-facing problem with an image file: the message names the file and what to do."""


ImageLike = "str | os.PathLike | Image.Image | torch.Tensor"


def load(source: str | os.PathLike | Image.Image) -> Image.Image:
    """Open an image as RGB with its EXIF orientation applied; grey and RGBA inputs become RGB."""
    if isinstance(source, Image.Image):
        return _to_rgb(source, "the given image")
    path = Path(source)
    if not path.exists():
        raise ImageError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS  # ours, for this open only
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on odd headers are not the user's business
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return _to_rgb(img, str(path))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: too many pixels ({exc}); resize it below "
                         f"{MAX_PIXELS // 1_000_000} megapixels first") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read; use a PNG, JPEG or similar") from None
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise any type on corrupt data (fuzz/)
        raise ImageError(f"{path}: unreadable or corrupt image ({type(exc).__name__}: "
                         f"{_one_line(exc)}); re-export or re-download it") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or "no details"


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    """Decode, rotate upright, flatten transparency onto white, and convert to RGB."""
    slow = [t[0] for t in getattr(img, "tile", None) or () if t[0] in Image.DECODERS]
    if slow and img.width * img.height > MAX_SLOW_PIXELS:  # a 200-byte BMP ran past 20 s (fuzz/)
        raise ImageError(f"{name}: {img.width}x{img.height} pixels in a format Pillow decodes slowly "
                         f"({slow[0]}); convert it to PNG or JPEG, or resize it below "
                         f"{MAX_SLOW_PIXELS // 1_000_000} megapixels")
    img.load()
    img = ImageOps.exif_transpose(img)
    if min(img.size) < 2:
        raise ImageError(f"{name}: image is {img.size[0]}x{img.size[1]} pixels; it needs at least 2x2")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)  # transparent areas become white, not black
    return img.convert("RGB")


def fit_size(size: tuple[int, int], longest: int | None) -> tuple[int, int]:
    """(width, height) with the longest side `longest` and the aspect of `size`; None keeps `size`."""
    if longest is None or max(size) == longest:
        return size
    if longest < 2:
        raise ImageError(f"size must be at least 2 pixels, not {longest}")
    w, h = size
    scale = longest / max(w, h)
    return max(2, round(w * scale)), max(2, round(h * scale))


def fit(img: Image.Image, longest: int | None) -> Image.Image:
    """Resize so the longest side is `longest` (aspect kept); None keeps the size."""
    size = fit_size(img.size, longest)
    return img if size == img.size else img.resize(size, Image.LANCZOS)


def load_mask(source: str | os.PathLike | Image.Image, size: tuple[int, int],
              device: torch.device | str = "cpu") -> torch.Tensor:
    """A region as a (1, 1, H, W) tensor in [0, 1] at `size` (width, height): white is in, black out, grey
    a soft edge or a blend; a mask of another size is resized. An all-black mask is refused: it paints nothing."""
    name = str(source) if isinstance(source, (str, os.PathLike)) else "a mask"
    grey = load(source).convert("L")
    if grey.size != tuple(size):
        grey = grey.resize(size, Image.BILINEAR)
    mask = torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0)[None, None].to(device)
    if mask.max() < 1 / 255:
        raise ImageError(f"{name}: the mask is empty (black everywhere); paint its region white")
    return mask


def to_tensor(img: Image.Image, device: torch.device | str = "cpu") -> torch.Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous().to(device)


def to_image(t: torch.Tensor) -> Image.Image:
    arr = t.detach().float().clamp(0, 255).round().squeeze(0).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def resize_tensor(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of a (1, 3, H, W) tensor to (H', W'), antialiased when shrinking."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return torch.nn.functional.interpolate(t, size=size, mode="bicubic", align_corners=False,
                                           antialias=True)


def enlarge(x: torch.Tensor, photo: torch.Tensor, detail: float) -> torch.Tensor:
    """A coarser pyramid level's picture `x` enlarged to `photo`'s size, plus `detail` times the photo's band finer
    than `x` (a Laplacian pyramid's): without it the next level starts from a blur and spends its iterations
    rebuilding the photo's outlines. With 1, a coarse picture that is the photo shrunk by `resize_tensor` enlarges
    to the photo itself (the optimiser's coarse targets are Lanczos shrinks, so nearly: about 1 in 255 on average)."""
    size = tuple(photo.shape[-2:])
    big = resize_tensor(x, size)
    if detail:
        big = big + detail * (photo - resize_tensor(resize_tensor(photo, tuple(x.shape[-2:])), size))
    return big.clamp(0, 255)  # bicubic overshoots


# --- colour preservation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer") ---

def _rgb_to_yiq(t: torch.Tensor) -> torch.Tensor:
    m = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                     dtype=t.dtype, device=t.device)
    return torch.einsum("ij,bjhw->bihw", m, t)


def _yiq_to_rgb(t: torch.Tensor) -> torch.Tensor:
    m = torch.tensor([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]],
                     dtype=t.dtype, device=t.device)
    return torch.einsum("ij,bjhw->bihw", m, t)


def luminance_transfer(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep the stylised image's luminance and the content's colours (neural-style's -original_colors)."""
    content = resize_tensor(content, tuple(stylised.shape[-2:]))
    y = _rgb_to_yiq(stylised)[:, :1]
    iq = _rgb_to_yiq(content)[:, 1:]
    return _yiq_to_rgb(torch.cat([y, iq], 1)).clamp(0, 255)


def match_histogram(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Give `source` (1, 3, H, W) the colour mean and covariance of `target` (Gatys 2016, colour histogram
    matching): the whitening and colouring the arbitrary-style network applies to features (whitening.py).

    Used before stylisation: the style image is recoloured to the content's palette so the painting's
    strokes transfer but the photo's colours stay.
    """
    return whitening.transform(source, whitening.statistics(target, 0.5), 1.0).clamp(0, 255)


# --- saving -------------------------------------------------------------------------------------

def check_folder(path: str | os.PathLike) -> Path:
    """Fail early, before minutes of work, if the output's folder is missing or not writable."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ImageError(f"{path}: folder {folder} does not exist; create it or choose another output path")
    if not os.access(folder, os.W_OK):
        raise ImageError(f"{path}: folder {folder} is not writable; choose another output path")
    return path


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before minutes of work, if the output cannot be written."""
    path = check_folder(path)
    if path.suffix.lower() not in Image.registered_extensions():
        raise ImageError(f"{path}: unknown image extension {path.suffix!r}; use .png or .jpg")
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: equal once resolved (`./x`, `x`, symlinks) or the same inode
    (hard links)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_not_an_input(output: str | os.PathLike, inputs: Iterable[object], overwrite: bool = False) -> None:
    """Refuse, before any work, to write `output` over a file the run reads (content, style, init, weights).

    `inputs` may hold anything a run accepts (paths, PIL images, tensors, registry names); only paths
    of existing files or folders are compared. `overwrite` (--overwrite) allows replacing them.
    """
    if overwrite:
        return
    for source in inputs:
        if isinstance(source, (str, os.PathLike)) and Path(source).exists() and same_file(output, source):
            raise ImageError(f"{output}: is also an input of this run ({source}); choose another output "
                             f"path, or pass --overwrite (overwrite=True) to replace it")


def readable_mode() -> int:
    """The mode a plain new file gets under the current umask (what `open` would give it)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_error(path: str | os.PathLike, exc: OSError) -> ImageError:
    """A one-line ImageError for a failed write, saying what to do for the usual causes."""
    advice = {errno.ENOSPC: "the disk is full; free some space or write to another disk",
              errno.EDQUOT: "the disk quota is used up; free some space or write elsewhere",
              errno.EROFS: "the folder is on a read-only file system; write elsewhere",
              errno.EACCES: "no permission to write there; choose another folder",
              errno.EPERM: "no permission to write there; choose another folder"}
    reason = advice.get(exc.errno, "choose another folder")
    return ImageError(f"{path}: could not be written ({exc.strerror or exc}); {reason}")


def save(img: Image.Image | torch.Tensor, path: str | os.PathLike) -> Path:
    """Write atomically (see `write_atomic`); an OSError becomes a one-line ImageError."""
    path = check_writable(path)
    if isinstance(img, torch.Tensor):
        img = to_image(img)
    fmt = Image.registered_extensions()[path.suffix.lower()]
    return write_atomic(path, lambda fh: img.save(fh, format=fmt, **({"quality": 95} if fmt == "JPEG" else {})))


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write` on a temporary file in the same folder, renamed over `path` when complete.

    Whatever stops it (a full disk, a read-only folder, Ctrl-C, a bad input) leaves no partial file
    behind and an earlier file at `path` as it was; an OSError becomes a one-line ImageError.
    """
    try:
        return replace_atomically(path, write)
    except OSError as exc:
        raise write_error(path, exc) from None


def replace_atomically(path: Path, write: Callable[[BinaryIO], object], durable: bool = False) -> Path:
    """`write_atomic` with OSError left to the caller; `durable` also flushes the file to disk before the
    rename, so a crash of the machine leaves the old file or the new one (checkpoints, manifests)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    try:
        os.fchmod(fd, readable_mode())  # mkstemp's 0600 would make the file private to this user
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

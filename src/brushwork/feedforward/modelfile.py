"""Model files: safetensors weights plus a header that says what they are, and the registry of them.

The header (safetensors metadata, key "brushwork", one JSON string) carries the format version, the
architecture and its config, the style images (name, SHA-256, blend weight, a small JPEG thumbnail), the
training settings and brushwork's version, so a file explains itself without its training run.

Known models are the bundled ones (assets/models, float16) and the user's (models/ in brushwork's cache
folder, where `brushwork train` saves by default); a model is named by its file name without extension.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes
from torch import nn

from .. import images, presets
from ..errors import BrushworkError, OptionError
from ..nets.transformer import ARCHES, TransformerConfig, TransformerNet
from ..weights import cache_dir

FORMAT = 1  # bump when a reader of the old format could misread the new one
HEADER_KEY = "brushwork"
SUFFIX = ".safetensors"
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
ENV_MODELS = "BRUSHWORK_MODELS"  # the user's model folder, overriding <cache>/models
THUMBNAIL_SIDE = 64


class ModelError(BrushworkError, ValueError):
    """A model file is missing, unreadable or not one this brushwork can use; the message says what to do."""


def user_dir() -> Path:
    return Path(os.environ[ENV_MODELS]).expanduser() if os.environ.get(ENV_MODELS) else cache_dir() / "models"


def style_record(img: Image.Image, name: str, blend: float) -> dict:
    """What a model file remembers of one style image: enough to recognise it, small enough to carry."""
    thumb = io.BytesIO()
    images.fit(img, THUMBNAIL_SIDE).save(thumb, format="JPEG", quality=80)
    return {"name": name, "sha256": hashlib.sha256(img.tobytes()).hexdigest(), "size": list(img.size),
            "blend": blend, "thumbnail_jpeg": base64.b64encode(thumb.getvalue()).decode()}


@dataclass(frozen=True)
class Model:
    """A loaded network and its header."""

    net: TransformerNet
    header: dict
    path: Path

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(SUFFIX)

    def thumbnail(self) -> Image.Image:
        return Image.open(io.BytesIO(base64.b64decode(self.header["styles"][0]["thumbnail_jpeg"]))).convert("RGB")


def write_atomically(path: Path, data: bytes) -> None:
    """A temporary file beside `path`, flushed to disk, then renamed over it: a crash or SIGKILL at any
    moment leaves either the old file or the new one, never a torn one."""
    images.replace_atomically(path, lambda fh: fh.write(data), durable=True)


def check_output(path: str | os.PathLike) -> Path:
    """Fail before training if the model cannot be written there."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.suffix != SUFFIX:
        raise ModelError(f"{path}: model files end in {SUFFIX}; name the output e.g. starry{SUFFIX}")
    if not folder.is_dir():
        raise ModelError(f"{path}: folder {folder} does not exist; create it or choose another output path")
    if not os.access(folder, os.W_OK):
        raise ModelError(f"{path}: folder {folder} is not writable; choose another output path")
    return path


def save_model(net: nn.Module, path: str | os.PathLike, *, styles: list[dict], training: dict,
               recipe: dict | None = None, dtype: torch.dtype = torch.float16) -> Path:
    """Write `net` (any network whose `config` has `arch` and `to_dict()`; stored in `dtype`: float16 halves
    the file and changes no output pixel measurably). `recipe` (a bundled model's command and minutes,
    scripts/bundle_model.py) joins the header if given."""
    from .. import __version__

    path = check_output(path)
    header = {"format": FORMAT, "arch": net.config.arch, "config": net.config.to_dict(), "styles": styles,
              "training": training, **({"recipe": recipe} if recipe else {}), "brushwork": __version__}
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in net.state_dict().items()}
    write_atomically(path, save_bytes(tensors, metadata={HEADER_KEY: json.dumps(header)}))
    return path


def resolve(model: str | os.PathLike) -> Path:
    """A file path as given, else a known model's name (the user's before the bundled ones)."""
    path = Path(model)
    if path.suffix == SUFFIX or os.sep in str(model) or path.exists():
        if not path.is_file():
            raise ModelError(f"{path}: no such model file; check the path, or see `brushwork models list`")
        return path
    for folder in (user_dir(), BUNDLED_DIR):
        candidate = folder / f"{model}{SUFFIX}"
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(name for name, *_ in list_models())) or "none yet; train one with `brushwork train`"
    raise ModelError(f"{model}: no such model (known: {known}); give a {SUFFIX} file or a known name")


def read_file(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Header and tensors of any brushwork network file (a style's model or the arbitrary-style decoders),
    checked as far as every kind of network shares: readable, a brushwork header, a format this reads."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read it ({exc.strerror}); check the path and its permissions") from None
    try:
        tensors = load_bytes(data)
        # safetensors' Python loader drops the metadata; it is the JSON header's "__metadata__" entry
        n = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8:8 + n]).get("__metadata__") or {}
    except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not a readable safetensors file, or truncated ({exc}); "
                         f"re-download or retrain it") from None
    if HEADER_KEY not in metadata:
        raise ModelError(f"{path}: a safetensors file but not a brushwork model (no '{HEADER_KEY}' header); "
                         f"train one with `brushwork train`")
    try:
        header = json.loads(metadata[HEADER_KEY])
        version = int(header["format"])
    except (ValueError, KeyError, TypeError, OverflowError):
        raise ModelError(f"{path}: its brushwork header is damaged; re-download or retrain it") from None
    if version > FORMAT:
        raise ModelError(f"{path}: model format {version} is newer than this brushwork reads ({FORMAT}); "
                         f"upgrade brushwork")
    return header, tensors


def read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Header and tensors of a style's model file, with every check that can fail before building a network."""
    header, tensors = read_file(path)
    styles = header.get("styles")
    if not (isinstance(styles, list) and styles and all(isinstance(st, dict) and isinstance(st.get("name"), str)
                                                        for st in styles) and isinstance(header.get("training"), dict)):
        raise ModelError(f"{path}: its brushwork header is damaged (no style names or training record); "
                         f"re-download or retrain it")
    recipe = header.get("recipe", {"command": "", "minutes": 0})
    if not (isinstance(recipe, dict) and isinstance(recipe.get("command"), str)
            and isinstance(recipe.get("minutes"), (int, float))):
        raise ModelError(f"{path}: its brushwork header's recipe is damaged (want a command and minutes); "
                         f"re-download or retrain it")
    if header.get("arch") not in ARCHES:
        raise ModelError(f"{path}: architecture {header.get('arch')!r} is not one this brushwork runs "
                         f"({', '.join(ARCHES)}); upgrade brushwork or retrain the model")
    _config(path, header)  # `models list` shows it, so a listed header must have a valid one
    return header, tensors


def _config(path: Path, header: dict) -> TransformerConfig:
    """The header's network shape, checked against the ranges training allows, so a damaged or hostile
    header cannot ask for a network of absurd size."""
    config = header.get("config")
    if not isinstance(config, dict) or set(config) != {"width", "blocks"}:
        raise ModelError(f"{path}: its header has no valid network config (want width and blocks, got "
                         f"{repr(config)[:60]}); retrain or re-download it")
    try:
        for key in ("width", "blocks"):
            presets.check_range(key, config[key])
    except OptionError as exc:
        raise ModelError(f"{path}: its header's network {exc}; retrain or re-download it") from None
    return TransformerConfig.from_header(header["arch"], config)


def build(path: Path, arch: str, make: Callable[[], nn.Module], tensors: dict[str, torch.Tensor],
          probe: Callable[[nn.Module], torch.Tensor]) -> nn.Module:
    """The network `make` builds, holding `tensors`, checked before any memory is spent on it: the layout is
    built on the meta device (no storage), so the size allocated is never more than the file holds.
    `probe` runs the network on a small input: finite weights can still overflow to infinite pixels."""
    with torch.device("meta"):
        net = make()
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in tensors.items()}
    if want != have:
        wrong = sorted(set(want) ^ set(have)) or sorted(k for k in want if want[k] != have[k])
        detail = ", ".join(f"{k} {have.get(k, 'missing')} (want {want.get(k, 'none')})" for k in wrong[:2])
        raise ModelError(f"{path}: its weights do not fit the {arch} network its header describes "
                         f"({len(wrong)} tensors differ, e.g. {detail}); retrain or re-download it")
    bad = [k for k, v in tensors.items() if not v.is_floating_point() or not torch.isfinite(v).all()]
    if bad:
        raise ModelError(f"{path}: {len(bad)} weight tensors (e.g. {bad[0]}) are not finite floating-point numbers; "
                         f"the file is damaged: retrain or re-download it")
    net.load_state_dict({k: v.float() for k, v in tensors.items()}, assign=True)
    with torch.no_grad():
        if not torch.isfinite(probe(net)).all():
            raise ModelError(f"{path}: its weights overflow to infinite pixels; retrain or re-download it")
    return net


def load_model(model: str | os.PathLike, device: str | torch.device = "cpu") -> Model:
    """A known model's name or a file, as a float32 network in eval mode on `device`."""
    path = resolve(model)
    header, tensors = read(path)
    config = _config(path, header)
    net = build(path, config.arch, lambda: TransformerNet(config), tensors,
                lambda net: net(torch.full((1, 3, 8, 8), 128.0)))
    return Model(net.eval().requires_grad_(False).to(device), header, path)


def list_models() -> list[tuple[str, str, Path, dict | None]]:
    """(name, "user"/"bundled", path, header or None if unreadable) for every known model; a user model
    hides a bundled one of the same name."""
    rows, seen = [], set()
    for where, folder in (("user", user_dir()), ("bundled", BUNDLED_DIR)):
        for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
            name = path.name.removesuffix(SUFFIX)
            if name in seen:
                continue
            seen.add(name)
            try:
                header = read(path)[0]
            except ModelError:
                header = None
            rows.append((name, where, path, header))
    return rows

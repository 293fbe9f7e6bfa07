"""Where network weights come from: the bundled VGG16, a registry of downloadable networks, local files.

Preprocessing belongs to the weights (the Caffe VGG expects BGR 0-255 minus a mean; another file
may expect RGB 0-1 normalised), so it travels with them rather than living in the model.

Downloads are Keras Applications ``.h5`` files; they are checked against the hash Keras itself uses,
converted once to ``<name>.safetensors`` (torchvision keys, OIHW, float32) in the cache directory and
reused from there. Every failure is a `WeightsError` whose message says what to do next.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import BrushworkError
from .models import CONFIGS

ASSETS = Path(__file__).parent / "assets"
BUNDLED = ASSETS / "vgg16-caffe.safetensors"
ENV_WEIGHTS = "BRUSHWORK_WEIGHTS"  # default weights: a registry name or a file
ENV_CACHE = "BRUSHWORK_CACHE"  # cache directory, overriding $XDG_CACHE_HOME/brushwork
ENV_MIRROR = "BRUSHWORK_WEIGHTS_URL"  # base URL (http://, https://, file://) holding the upstream file names

CHUNK = 1 << 20
TIMEOUT_S = 30.0
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class WeightsError(BrushworkError, RuntimeError):
    """A weights file could not be found, fetched or read; the message says what to do instead."""


@dataclass(frozen=True)
class Preprocessing:
    """Maps our pixel space (RGB, 0-255, NCHW float) to what a network was trained on."""

    channel_order: str = "BGR"
    mean: tuple[float, float, float] = (103.939, 116.779, 123.68)  # in `channel_order`
    scale: float = 1.0  # multiply the 0-255 pixels by this before subtracting the mean
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __call__(self, rgb255: torch.Tensor) -> torch.Tensor:
        x = rgb255.flip(1) if self.channel_order == "BGR" else rgb255
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * self.scale - mean) / std


CAFFE = Preprocessing()


@dataclass(frozen=True)
class WeightSpec:
    """A network we know how to fetch: where from, how to check it, how to feed it."""

    name: str
    arch: str
    url: str
    hash: str  # "md5:<hex>" or "sha256:<hex>" of the downloaded file
    size: int  # bytes of the download, for the progress bar and `list_weights`
    filename: str  # the name the download has upstream
    licence: str
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    bundled: Path | None = None  # a copy shipped in the package: used instead of downloading


VGG_LICENCE = "VGG weights (c) Visual Geometry Group, University of Oxford, CC BY 4.0"
KERAS_BASE = "https://storage.googleapis.com/tensorflow/keras-applications"

# URLs and md5 hashes as in keras/src/applications/vgg16.py and vgg19.py (WEIGHTS_PATH_NO_TOP, file_hash);
# sizes as Keras reports them when downloading.
REGISTRY: dict[str, WeightSpec] = {
    "vgg16": WeightSpec(
        name="vgg16", arch="vgg16",
        url=f"{KERAS_BASE}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        hash="md5:6d6bbae143d832006294945121d1f1fc", size=58_889_256,
        filename="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", licence=VGG_LICENCE,
        bundled=BUNDLED),
    "vgg19": WeightSpec(
        name="vgg19", arch="vgg19",
        url=f"{KERAS_BASE}/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        hash="md5:253f8cb515780f3b799900260a226db6", size=80_134_624,
        filename="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", licence=VGG_LICENCE),
}



@dataclass
class LoadedWeights:
    arch: str
    state_dict: dict[str, torch.Tensor]
    preprocessing: Preprocessing
    source: str


# --- layout -----------------------------------------------------------------------------------------


def conv_layout(arch: str) -> list[tuple[str, int, tuple[int, int, int, int]]]:
    """(Keras layer name, torchvision `features` index, OIHW shape) of every conv layer of `arch`.

    In torchvision's `features` each conv is followed by a ReLU and each block by a pooling layer,
    which is what makes VGG16's indices 0, 2, 5, 7, 10, ...
    """
    layout, index, in_ch, block, conv = [], 0, 3, 1, 1
    for item in CONFIGS[arch]:
        if item == "M":
            index, block, conv = index + 1, block + 1, 1
            continue
        layout.append((f"block{block}_conv{conv}", index, (int(item), in_ch, 3, 3)))
        index, in_ch, conv = index + 2, int(item), conv + 1
    return layout


def expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for _, index, shape in conv_layout(arch):
        shapes[f"features.{index}.weight"] = shape
        shapes[f"features.{index}.bias"] = (shape[0],)
    return shapes


def detect_arch(keys) -> str:
    """VGG19 is the only one with a 16th conv (features.34)."""
    return "vgg19" if "features.34.weight" in keys else "vgg16"


def validate(tensors: dict[str, torch.Tensor], arch: str, source: str | Path) -> dict[str, torch.Tensor]:
    """Check every conv tensor of `arch` is present with the right shape; return just those, float32."""
    out: dict[str, torch.Tensor] = {}
    for key, shape in expected_shapes(arch).items():
        if key not in tensors:
            raise WeightsError(
                f"{source} is not a {arch} weights file: it lacks {key} (expected torchvision-style keys "
                "features.N.weight/bias for the VGG conv layers)")
        got = tuple(tensors[key].shape)
        if got != shape:
            raise WeightsError(
                f"{source} does not fit {arch}: {key} has shape {got} but {arch} needs {shape}; "
                "is it a different network's file?")
        out[key] = tensors[key].to(torch.float32)
    return out


# --- Keras h5 ---------------------------------------------------------------------------------------


def read_keras_h5(path: str | Path) -> tuple[str, dict[str, torch.Tensor]]:
    """Read a Keras VGG16/VGG19 .h5 into (arch, float32 torchvision state dict).

    Layers are found by their Keras names (block1_conv1, ...) anywhere in the file, so the Keras 1/2
    layouts (`block1_conv1/block1_conv1_W_1:0`, `block1_conv1/block1_conv1/kernel:0`, `model_weights/...`)
    and the Keras 3 one (`layers/block1_conv1/vars/0`) all work. Within a layer the kernel is the 4-d
    dataset and the bias the 1-d one, which holds whatever the datasets are called.
    """
    import h5py  # only needed for .h5 files

    found: dict[str, dict[int, np.ndarray]] = {}
    largest = max(math.prod(shape) for _, _, shape in conv_layout("vgg19"))

    def visit(name: str | bytes, obj) -> None:
        if isinstance(name, bytes):  # a corrupt name table can hand back undecoded names
            name = name.decode("utf-8", "replace")
        if not isinstance(obj, h5py.Dataset) or name.startswith("optimizer_weights"):
            return
        match = re.search(r"block\d+_conv\d+", name)
        if match and obj.ndim in (1, 4):
            slot = found.setdefault(match.group(0), {})
            if obj.ndim in slot:
                raise WeightsError(f"{path} has two {obj.ndim}-d tensors for {match.group(0)}; "
                                   "expected one kernel and one bias per layer")
            if obj.size > largest:  # a corrupt header can claim any size: check before allocating it
                raise WeightsError(f"{path}: {name} claims {obj.size} values, more than any VGG layer "
                                   f"({largest}); is the file corrupt or another network's?")
            slot[obj.ndim] = np.asarray(obj, dtype=np.float32)

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except WeightsError:
        raise
    except Exception as err:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError, ... on corrupt files
        raise WeightsError(f"{path} is not a readable HDF5 file ({type(err).__name__}: "
                           f"{' '.join(str(err).split())[:200]}); re-download it") from None
    if not found:
        raise WeightsError(f"{path} holds no VGG conv layers (block1_conv1, ...); "
                           "expected a Keras Applications VGG16 or VGG19 weights file")
    arch = "vgg19" if "block5_conv4" in found else "vgg16"
    tensors: dict[str, torch.Tensor] = {}
    for layer, index, _ in conv_layout(arch):
        parts = found.get(layer, {})
        if 4 not in parts or 1 not in parts:
            raise WeightsError(f"{path} lacks the kernel or bias of {layer}; is it a complete Keras {arch} file?")
        # Keras kernels are HWIO (3, 3, in, out); PyTorch wants OIHW. Both convolve the same way.
        tensors[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(parts[4].transpose(3, 2, 0, 1)))
        tensors[f"features.{index}.bias"] = torch.from_numpy(parts[1])
    return arch, validate(tensors, arch, path)


# --- cache and download -------------------------------------------------------------------------------


def cache_dir() -> Path:
    """$BRUSHWORK_CACHE, else $XDG_CACHE_HOME/brushwork, else ~/.cache/brushwork (not created here)."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "brushwork"
    return Path.home() / ".cache" / "brushwork"


def get_spec(name: str) -> WeightSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(REGISTRY)} "
                           "(or give a .safetensors / Keras .h5 file)") from None


def cached_path(name: str) -> Path:
    """Where the converted download of `name` lives in the cache."""
    return cache_dir() / f"{get_spec(name).name}.safetensors"


def weights_path(name: str) -> Path:
    """Where the weights for `name` are, or will be once fetched: the bundled file if shipped, else the cache."""
    spec = get_spec(name)
    if spec.bundled is not None and spec.bundled.exists():
        return spec.bundled
    return cached_path(name)


def download_url(spec: WeightSpec) -> str:
    """The upstream URL, or `<$BRUSHWORK_WEIGHTS_URL>/<filename>` when a mirror is set."""
    mirror = os.environ.get(ENV_MIRROR)
    return f"{mirror.rstrip('/')}/{spec.filename}" if mirror else spec.url


def list_weights() -> list[tuple[str, str, str, int]]:
    """(name, arch, status, download size in bytes) per registry entry; status is bundled/cached/not downloaded."""
    rows = []
    for name, spec in REGISTRY.items():
        if spec.bundled is not None and spec.bundled.exists():
            status = "bundled"
        elif cached_path(name).exists():
            status = "cached"
        else:
            status = "not downloaded"
        rows.append((name, spec.arch, status, spec.size))
    return rows


def file_hash(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def split_hash(spec: WeightSpec) -> tuple[str, str]:
    algorithm, _, expected = spec.hash.partition(":")
    if algorithm not in ("md5", "sha256") or not expected:
        raise WeightsError(f"registry entry {spec.name} has hash {spec.hash!r}; expected 'md5:<hex>' or 'sha256:<hex>'")
    return algorithm, expected.lower()


def _stream(url: str, dest: Path, size_hint: int, label: str, progress: bool) -> None:
    """Copy `url` into `dest` in chunks with a tqdm bar; raise OSError/URLError on any network trouble."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "brushwork"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(dest, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(total=total or size_hint or None, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=label, disable=not progress) as bar:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received < total:
        raise urllib.error.URLError(f"connection closed after {received} of {total} bytes")


def _convert(h5: Path, spec: WeightSpec, dest: Path, origin: str) -> None:
    """Write the float32 safetensors for `h5` to `dest` atomically (via a temp file beside it)."""
    arch, tensors = read_keras_h5(h5)
    if arch != spec.arch:
        raise WeightsError(f"{origin} holds {arch} weights but registry entry {spec.name} is {spec.arch}")
    metadata = {"arch": arch, "license": spec.licence, "origin": origin, "download_hash": spec.hash,
                "layout": "torchvision-style keys features.N.weight/bias; weights OIHW; float32",
                "input": "BGR channel order, pixel range 0-255, minus the per-channel mean B=103.939 "
                         "G=116.779 R=123.68 (Caffe)"}
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}-", suffix=".safetensors.part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(name: str, *, progress: bool = True, url: str | None = None) -> Path:
    """Return the local safetensors path for registry entry `name`, downloading it the first time.

    A bundled copy is returned as is. Otherwise the cached conversion is reused if present; else a Keras
    .h5 placed by hand in the cache directory under its upstream name is used; else it is downloaded
    from `url` (default: the registry URL, or the $BRUSHWORK_WEIGHTS_URL mirror). The download is
    hash-checked and converted; temporary files are removed whatever happens.
    """
    spec = get_spec(name)
    if spec.bundled is not None and spec.bundled.exists():
        return spec.bundled
    dest = cached_path(name)
    if dest.exists():
        return dest
    source = url or download_url(spec)
    algorithm, expected = split_hash(spec)
    cache = dest.parent
    manual = cache / spec.filename
    advice = (f"download {source} by hand (on a machine with internet) and save it as {manual}, "
              f"or pass --weights PATH with the downloaded .h5 file")
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightsError(f"cannot create the weights cache {cache} ({err}); set ${ENV_CACHE} to a "
                           f"writable directory, or pass --weights PATH") from err

    if manual.exists():  # the user followed the advice above: check it, never delete it
        got = file_hash(manual, algorithm)
        if got != expected:
            raise WeightsError(f"{manual} has {algorithm} {got} but {spec.name} should have {expected}; "
                               f"replace it with a fresh copy of {spec.url}")
        _convert(manual, spec, dest, origin=str(manual))
        return dest

    fd, tmp_name = tempfile.mkstemp(dir=cache, prefix=f".{spec.name}-", suffix=".h5.part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            _stream(source, tmp, spec.size, spec.name, progress)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = err if isinstance(err, urllib.error.HTTPError) else getattr(err, "reason", None) or err
            raise WeightsError(f"could not download the {spec.name} weights from {source} ({reason}); "
                               f"{advice}") from err
        got = file_hash(tmp, algorithm)
        if got != expected:
            raise WeightsError(
                f"the download of {spec.name} from {source} is corrupt: {algorithm} {got}, expected "
                f"{expected}; the partial file was deleted. Run again to retry, or {advice}")
        _convert(tmp, spec, dest, origin=source)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


# --- loading ------------------------------------------------------------------------------------------


def read_weights_file(path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """Read a .safetensors or Keras .h5 file (told apart by content, not suffix) as (arch, float32 tensors)."""
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; give a .safetensors or Keras .h5 file, "
                           f"or one of: {', '.join(REGISTRY)}")
    with open(path, "rb") as f:
        is_h5 = f.read(len(HDF5_MAGIC)) == HDF5_MAGIC
    if is_h5:
        return read_keras_h5(path)
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{path} is neither a safetensors nor an HDF5 (.h5) file ({err})") from err
    arch = detect_arch(tensors)
    return arch, validate(tensors, arch, path)


def load_weights(source: str | os.PathLike | None = None) -> LoadedWeights:
    """Resolve `source` (None, a registry name, or a file) to float32 tensors plus their preprocessing.

    None means: $BRUSHWORK_WEIGHTS if set, else the VGG16 that ships inside the package. A registry name
    is fetched (and cached) if it is not bundled.
    """
    if source is None:
        source = os.environ.get(ENV_WEIGHTS) or BUNDLED
    if isinstance(source, str) and source in REGISTRY:
        spec = REGISTRY[source]
        path = fetch(source)
        arch, tensors = read_weights_file(path)
        if arch != spec.arch:
            raise WeightsError(f"{path} holds {arch} weights but {source} should be {spec.arch}; delete it "
                               "and run again to fetch a fresh copy")
        return LoadedWeights(arch, tensors, spec.preprocessing, str(path))
    path = Path(source).expanduser()
    arch, tensors = read_weights_file(path)
    return LoadedWeights(arch, tensors, CAFFE, str(path))

"""Coverage-guided fuzzing of brushwork's file loaders with atheris (libFuzzer for Python).

    python fuzz/fuzz.py image --runs 100000
    python fuzz/fuzz.py video --max-time 3600          # ffmpeg per input: slow, so time-boxed
    python fuzz/fuzz.py weights --runs 100000         # .safetensors and Keras .h5, told apart by content
    python fuzz/fuzz.py model --runs 100000           # an instant style's model file (safetensors + JSON header)
    python fuzz/fuzz.py image --replay fuzz/regressions/image   # no atheris needed

The contract checked: every input gives a result or a `BrushworkError` (the CLI's one-line error); any
other exception, a hang (libFuzzer's -timeout per input) or a crash is a bug. Python exceptions are
recorded and the run goes on, so one run finds every kind of bug: each new kind's input is written to
out/fuzz/<target>/findings/, and a summary (inputs run, rate, findings) to out/fuzz/<target>.json.
Crashes and hangs stop libFuzzer, which writes the input to out/fuzz/<target>/crash-* / timeout-*.
Inputs that found bugs belong in fuzz/regressions/<target>/, which tests/test_fuzz_regressions.py replays.

Seeds are made on the fly (out/fuzz/<target>/seeds): small real files from ../shared/images when the
checkout has them, and made ones (every image mode and format Pillow writes, tiny videos in several
containers, weights files in every layout the loader knows, at toy sizes; model files written by
`save_model` at toy widths, and truncated and edited copies).
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
OUT = ROOT / "out" / "fuzz"
SCRATCH = Path(tempfile.mkdtemp(prefix="brushwork-fuzz-"))
atexit.register(lambda: __import__("shutil").rmtree(SCRATCH, ignore_errors=True))


def _scratch(data: bytes, name: str) -> Path:
    path = SCRATCH / name
    path.write_bytes(data)
    return path


# --- targets: one input in, a result or a BrushworkError out ------------------------------------------

def image_target(data: bytes) -> None:
    from brushwork import images

    img = images.load(_scratch(data, "input"))
    assert img.mode == "RGB" and min(img.size) >= 2


def video_target(data: bytes) -> None:
    from brushwork import video

    info = video.probe(_scratch(data, "input.mp4"))
    frames = video.read_frames(info, video.frame_size(info, 16))  # tiny frames: the decoder, not the scaler
    try:
        for _, frame in zip(range(3), frames):
            assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    finally:
        frames.close()


def weights_target(data: bytes) -> None:
    from brushwork import weights

    weights.load_weights(_scratch(data, "input.weights"))


def model_target(data: bytes) -> None:
    import torch

    from brushwork.feedforward import modelfile

    model = modelfile.load_model(_scratch(data, "input.safetensors"))
    x = torch.full((1, 3, 8, 8), 128.0)  # a model that loads must also run, to finite pixels
    y = model.net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert " + ".join(s["name"] for s in model.header["styles"]) and isinstance(model.header["training"], dict)


TARGETS: dict[str, Callable[[bytes], None]] = {"image": image_target, "video": video_target,
                                               "weights": weights_target, "model": model_target}
INSTRUMENT = {"image": ["brushwork", "PIL"], "video": ["brushwork"], "weights": ["brushwork", "h5py"],
              "model": ["brushwork"]}


def check(target: str, data: bytes) -> BaseException | None:
    """Run one input; None if it kept the contract, else the exception that broke it."""
    from brushwork.errors import BrushworkError

    try:
        TARGETS[target](data)
    except BrushworkError as exc:
        message = str(exc)
        if "\n" in message or not message:
            return AssertionError(f"a user-facing error must be one line: {message!r}")
    except Exception as exc:  # noqa: BLE001 - anything else is what we are looking for
        return exc
    return None


# --- seeds ----------------------------------------------------------------------------------------

def _image_seeds() -> dict[str, bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB")
    seeds: dict[str, bytes] = {}

    def save(name: str, img, fmt: str, **kw) -> None:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        seeds[name] = buf.getvalue()

    for mode in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16", "I", "F", "CMYK"):
        img = rgb.convert(mode) if mode not in ("I;16", "I", "F") else rgb.convert("L").convert(mode)
        for fmt in ("PNG", "TIFF", "BMP", "GIF", "JPEG", "WEBP", "PPM", "TGA", "ICO"):
            try:
                save(f"{mode.replace(';', '')}.{fmt.lower()}", img, fmt)
            except (OSError, ValueError, KeyError):
                pass  # not every format takes every mode
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    save("exif.jpg", rgb, "JPEG", exif=exif.tobytes())
    pal = rgb.convert("P")
    save("transparent.gif", pal, "GIF", transparency=0)
    save("anim.gif", rgb, "GIF", save_all=True, append_images=[rgb.rotate(90, expand=False)])
    for real in sorted(SHARED.glob("*/*")):  # small real photos and paintings
        if real.suffix.lower() in (".png", ".jpg") and real.stat().st_size < 64_000:
            seeds[f"real-{real.name}"] = real.read_bytes()
    return seeds


def _video_seeds() -> dict[str, bytes]:
    from brushwork.video import ffmpeg_exe

    exe, seeds = ffmpeg_exe(), {}
    src = ["-f", "lavfi", "-i", "testsrc=size=16x12:rate=5:duration=0.6"]
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.6"]
    recipes = {"h264.mp4": src + ["-c:v", "libx264", "-pix_fmt", "yuv420p"],
               "aac.mp4": src + tone + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"],
               "mpeg4.avi": src + ["-c:v", "mpeg4"], "mjpeg.mov": src + ["-c:v", "mjpeg"],
               "anim.gif": src, "vp9.webm": src + ["-c:v", "libvpx-vp9"],
               "rotated.mp4": src + ["-c:v", "libx264", "-metadata:s:v", "rotate=90"],
               "audio-only.m4a": tone + ["-c:a", "aac"]}
    real = SHARED / "video" / "cockatoo.mp4"
    if real.is_file():  # a few real frames, small
        recipes["real.mp4"] = ["-t", "0.3", "-i", str(real), "-vf", "scale=32:-2", "-c:v", "libx264", "-an"]
    for name, args in recipes.items():
        dest = SCRATCH / name
        run = subprocess.run([exe, "-hide_banner", "-v", "error", "-y", *args, str(dest)], capture_output=True)
        if run.returncode == 0:
            seeds[name] = dest.read_bytes()
    return seeds


def _weights_seeds() -> dict[str, bytes]:
    import h5py
    import torch
    from safetensors.torch import save

    from brushwork.weights import conv_layout

    seeds: dict[str, bytes] = {}
    layout = conv_layout("vgg16")
    small = {f"features.{i}.weight": torch.zeros(2, 2, 1, 1) for _, i, _ in layout}
    small.update({f"features.{i}.bias": torch.zeros(2) for _, i, _ in layout})
    seeds["toy.safetensors"] = save(small)
    seeds["one.safetensors"] = save({"features.0.weight": torch.zeros(64, 3, 3, 3, dtype=torch.bfloat16)})
    real = ROOT.parent / "shared" / "weights" / "vgg16-caffe.safetensors"
    if real.is_file():  # the real header, the start of the data
        with open(real, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            f.seek(0)
            seeds["real-head.safetensors"] = f.read(8 + n + 256)
    names = {"keras2": "{l}/{l}_W_1:0|{l}/{l}_b_1:0", "keras2b": "{l}/{l}/kernel:0|{l}/{l}/bias:0",
             "keras3": "layers/{l}/vars/0|layers/{l}/vars/1"}
    for style, pattern in names.items():
        path = SCRATCH / f"{style}.h5"
        with h5py.File(path, "w") as f:
            for layer, _, _ in layout[:4]:
                kernel, bias = pattern.format(l=layer).split("|")
                f[kernel] = np.zeros((3, 3, 1, 2), np.float32)
                f[bias] = np.zeros(2, np.float32)
        seeds[f"{style}.h5"] = path.read_bytes()
    return seeds


def _model_seeds() -> dict[str, bytes]:
    """Real model files from the project's own save function at toy sizes, and damaged copies."""
    import json

    from PIL import Image

    from brushwork.feedforward import modelfile
    from brushwork.nets.transformer import TransformerConfig, TransformerNet

    style = modelfile.style_record(Image.new("RGB", (8, 8), "blue"), "blue.png", 1.0)
    seeds: dict[str, bytes] = {}
    for width, blocks in ((1, 1), (2, 0), (2, 2)):
        path = SCRATCH / f"w{width}b{blocks}.safetensors"
        modelfile.save_model(TransformerNet(TransformerConfig(width, blocks)), path, styles=[style],
                             training={"steps": 1})
        seeds[path.name] = data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    head = json.loads(data[8:8 + n])
    seeds["truncated.safetensors"] = data[: len(data) // 2]
    seeds["header-only.safetensors"] = data[: 8 + n]
    for name, change in {"wide": {"width": 10**9}, "no-blocks": {"blocks": -1}, "text": {"width": "2"}}.items():
        meta = json.loads(head["__metadata__"]["brushwork"])
        meta["config"].update(change)
        edited = {**head, "__metadata__": {"brushwork": json.dumps(meta)}}
        text = json.dumps(edited).encode()
        seeds[f"{name}.safetensors"] = len(text).to_bytes(8, "little") + text + data[8 + n:]
    return seeds


SEEDS = {"image": _image_seeds, "video": _video_seeds, "weights": _weights_seeds, "model": _model_seeds}


# --- the run --------------------------------------------------------------------------------------

class Tally:
    """Inputs run and findings (one per exception type and place), written out at exit."""

    def __init__(self, target: str) -> None:
        self.target, self.runs, self.start = target, 0, time.time()
        self.folder = OUT / target / "findings"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.summary = OUT / f"{target}.json"
        # a run stopped and started again (to free the CPU, or after a fix) adds to the earlier counts
        old = json.loads(self.summary.read_text()) if self.summary.is_file() else {}
        self.before = (old.get("inputs", 0), old.get("seconds", 0.0), old.get("sessions", 0))
        self.kinds: dict[str, dict] = old.get("findings", {})

    def record(self, data: bytes, exc: BaseException) -> None:
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        kind = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}" if frame else type(exc).__name__
        if kind not in self.kinds:
            name = hashlib.sha1(data).hexdigest()[:16]
            (self.folder / name).write_bytes(data)
            self.kinds[kind] = {"input": str(self.folder / name), "message": str(exc)[:300], "count": 0}
            print(f"\nFINDING {kind}: {str(exc)[:200]}", file=sys.stderr, flush=True)
        self.kinds[kind]["count"] += 1

    def write(self) -> None:
        runs, seconds = self.before[0] + self.runs, self.before[1] + time.time() - self.start
        summary = {"target": self.target, "inputs": runs, "seconds": round(seconds, 1),
                   "inputs_per_second": round(runs / max(seconds, 1e-9), 2), "sessions": self.before[2] + 1,
                   "findings": self.kinds}
        self.summary.write_text(json.dumps(summary, indent=1))


def replay(target: str, folder: Path) -> int:
    """Run every file in `folder` once; print and count the ones that break the contract."""
    bad = 0
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        exc = check(target, path.read_bytes())
        if exc is not None:
            bad += 1
            print(f"{path}: {type(exc).__name__}: {exc}")
    print(f"{target}: {bad} of {len(list(folder.iterdir()))} inputs broke the contract")
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", choices=sorted(TARGETS))
    p.add_argument("--runs", type=int, default=100_000, help="inputs to run (default %(default)s)")
    p.add_argument("--max-time", type=int, default=0, help="stop after this many seconds (0: no limit)")
    p.add_argument("--timeout", type=int, default=10, help="seconds per input before it counts as a hang")
    p.add_argument("--max-len", type=int, default=65536, help="largest input in bytes")
    p.add_argument("--replay", type=Path, help="run the files in this folder once instead of fuzzing")
    args, libfuzzer = p.parse_known_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.replay:
        return replay(args.target, args.replay)

    import atheris

    with atheris.instrument_imports(include=INSTRUMENT[args.target]):
        from PIL import Image

        import brushwork.images, brushwork.video, brushwork.weights  # noqa: E401,F401
        import brushwork.feedforward.modelfile, brushwork.nets.transformer  # noqa: E401,F401

        Image.init()  # imports every format plugin now, so they are instrumented
        if args.target == "weights":
            import h5py._hl.files  # noqa: F401
    work = OUT / args.target
    corpus, seeds = work / "corpus", work / "seeds"
    for folder in (corpus, seeds):
        folder.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS[args.target]().items():
        (seeds / name).write_bytes(data)
    tally = Tally(args.target)

    def one(data: bytes) -> None:
        tally.runs += 1
        exc = check(args.target, data)
        if exc is not None:
            tally.record(data, exc)
        if tally.runs % 100 == 0 or tally.runs == args.runs:  # libFuzzer exits without running atexit
            tally.write()

    flags = [f"-runs={args.runs}", f"-timeout={args.timeout}", f"-max_len={args.max_len}",
             f"-artifact_prefix={work}/", "-rss_limit_mb=3072", "-print_final_stats=1"]
    if args.max_time:
        flags.append(f"-max_total_time={args.max_time}")
    atheris.Setup([sys.argv[0], *flags, *libfuzzer, str(corpus), str(seeds)], one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fit a transformer network to the perceptual criterion: the optimiser's loss, other parameters.

The criterion (`perceptual.Perceptual`) is the optimiser's own, built from the same `Config` fields
(layers, weights, loss form, precision), so training adds no Gram, VGG or target code. Progress reaches
the caller only through a callback; the work folder beside the output holds the checkpoint (written
atomically, so a crash keeps the last good one) and the sample strips.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TypeVar

import torch
from PIL import Image

from .. import images, presets
from ..nets.transformer import TransformerConfig, TransformerNet
from ..perceptual import Perceptual
from ..weights import load_weights
from .data import Crops, find_photos
from .infer import stylize_tensor
from .modelfile import ModelError, check_output, save_model, style_record, write_atomically

CHECKPOINT = "checkpoint.pt"


S = TypeVar("S", bound="Settings")


class Settings:
    """Training settings as data: every numeric field checked against presets.RANGES (`lr` as `train_lr`)
    on creation, and copied with changes where a change is not None (a CLI flag that was not given)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            key = "train_lr" if f.name == "lr" else f.name
            if key in presets.RANGES:
                presets.check_range(key, getattr(self, f.name), f.name)

    def with_(self: S, **changes: object) -> S:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class TrainSettings(Settings):
    """Everything that shapes a trained model; saved in its header and its checkpoint.

    Defaults fit a 2-core CPU in an hour: 1500 steps of 4 crops of 128 px at ~2.2 s a step (README). They
    are the first bundled models' recipe: Johnson's plain network with content weight 4, which paints the
    painting's palette and keeps faces; the skip network kept the photo's colours at every step count
    measured. The bundled models since were trained longer at content weight 2 or 1.5, each file's header
    says how (benchmarks/results/instant-recipes.md).
    """

    steps: int = 1500
    batch: int = 4
    crop: int = 128  # side of the square training crops
    style_size: int = 256  # longest side of the style image for its Gram targets: sets the brush scale
    lr: float = 1e-3
    width: int = 16  # see nets/transformer.py
    blocks: int = 5
    skip: bool = False  # True: output = photo + network(photo) (nets/transformer.py)
    content_weight: float = 4.0  # the optimiser's 1 let the network lose the faces (content 0.79 vs 0.42)
    style_weight: float = presets.DEFAULT.style_weight
    tv_weight: float = presets.DEFAULT.tv_weight
    precision: str = "auto"
    seed: int = 0
    style_blend: tuple[float, ...] | None = None

    def criterion_config(self) -> presets.Config:
        # the optimiser's terms and layers, equally weighted: the bundled models' criterion (the default preset's
        # layer weights and style goal were chosen for the optimiser and not measured in training)
        return presets.Config(content_weight=self.content_weight, style_weight=self.style_weight,
                              tv_weight=self.tv_weight, style_size=self.style_size, precision=self.precision,
                              compile=False)


@dataclass
class TrainStep:
    """What a callback sees after each step."""

    step: int  # steps done, counting those before a resume
    total: int
    loss: float
    losses: dict[str, float]
    images_per_s: float  # over this session's steps
    seconds_left: float


@dataclass
class TrainResult:
    output: Path
    steps: int
    interrupted: bool
    seconds: float
    skipped: list[Path] = field(default_factory=list)  # unreadable photos
    history: list[dict[str, float]] = field(default_factory=list)


def work_folder(output: str | os.PathLike) -> Path:
    """Checkpoint and sample strips of a training run live here, beside its output."""
    output = Path(output)
    return output.with_name(output.name.removesuffix(".safetensors") + ".training")


def _style_images(styles: Sequence[str | os.PathLike | Image.Image], size: int, min_side: int) -> list[Image.Image]:
    loaded = []
    for style in styles:
        img = images.load(style)
        fitted = images.fit(img, size).size
        if max(img.size) * 2 < size or min(fitted) < min_side:
            raise images.ImageError(
                f"{style}: {img.size[0]}x{img.size[1]} pixels is too small to train at --style-size {size}; "
                f"use a picture at least {size // 2} px on its longer side, or a smaller --style-size")
        loaded.append(img)
    return loaded


def sample_strip(paint: Callable[[torch.Tensor], torch.Tensor], photos: Sequence[Image.Image],
                 device: torch.device) -> Image.Image:
    """Each sample photo above its version by `paint` (pixels to pixels), side by side."""
    tiles = []
    for photo in photos:
        x = images.to_tensor(photo, device)
        tiles.append((photo, images.to_image(paint(x))))
    w, h = sum(p.size[0] for p, _ in tiles), max(p.size[1] for p, _ in tiles)
    strip, left = Image.new("RGB", (w, 2 * h), "white"), 0
    for photo, out in tiles:
        strip.paste(photo, (left, 0))
        strip.paste(out, (left, h))
        left += photo.size[0]
    return strip


def check_fresh(output: Path, resume: bool) -> None:
    """Refuse before any work to replace a finished model or an earlier run's checkpoint, unless the run
    continues it."""
    checkpoint = work_folder(output) / CHECKPOINT
    if output.exists() and not resume:
        raise ModelError(f"{output}: already exists; choose another -o, delete it, or continue its training "
                         f"with --resume")
    if checkpoint.exists() and not resume:
        raise ModelError(f"{checkpoint}: an earlier run of this output left a checkpoint; continue it with "
                         f"--resume, or delete {work_folder(output)} to start over")


@dataclass
class Fitting:
    """What the training loop needs from one kind of network: the loop itself (batches, Adam, checkpoint,
    resume, Ctrl-C, sample strips, progress) is the same for every kind."""

    net: torch.nn.Module
    loss: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]]  # crops -> loss, raw term values
    save: Callable[[int], None]  # write the model file after this many steps
    record: dict  # what the run is, kept in its checkpoint
    same_run: Callable[[dict], bool]  # whether a checkpoint's state was made by this run's recipe
    paint: Callable[[torch.Tensor], torch.Tensor]  # pixels to pixels, for the sample strips


def fit(fitting: Fitting, crops: Crops, output: Path, *, steps: int, batch: int, lr: float, device: torch.device,
        samples: Sequence[Image.Image] = (), sample_every: int = 100, checkpoint_every: int = 50,
        resume: bool = False, callback: Callable[[TrainStep], None] | None = None) -> TrainResult:
    """Adam on `fitting.loss` over batches of `crops` until `steps` are done, from the checkpoint in the
    work folder with `resume`. Ctrl-C saves a checkpoint and the model so far, then returns with
    interrupted=True."""
    net = fitting.net
    work = work_folder(output)
    checkpoint = work / CHECKPOINT
    adam = torch.optim.Adam(net.parameters(), lr=lr)
    done = 0
    if resume and not checkpoint.exists():
        # killed before its first checkpoint: start afresh (as a video does), unless that would replace a model
        if output.exists():
            raise ModelError(f"{output}: has no checkpoint in {work} to continue from; choose another -o, "
                             f"or delete it to train afresh")
        resume = False
    if resume:
        try:
            state = torch.load(checkpoint, map_location=device, weights_only=True)
            same = fitting.same_run(state)
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, AttributeError):
            raise ModelError(f"{checkpoint}: damaged, so training cannot continue from it; delete {work} to "
                             f"start over") from None
        if not same:
            raise ModelError(f"{checkpoint}: was made with other styles or settings; resume with the same "
                             f"ones (only --steps may change), or delete {work} to start over")
        net.load_state_dict(state["net"])
        adam.load_state_dict(state["adam"])
        done = int(state["step"])
    work.mkdir(exist_ok=True)
    (work / "samples").mkdir(exist_ok=True)

    def save_all() -> None:
        state = {"net": net.state_dict(), "adam": adam.state_dict(), "step": done, **fitting.record}
        buf = io.BytesIO()
        torch.save(state, buf)
        write_atomically(checkpoint, buf.getvalue())
        fitting.save(done)

    start, first, history, interrupted = time.perf_counter(), done, [], False
    try:
        while done < steps:
            loss, raw = fitting.loss(crops.batch(done, batch).to(device))
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"the training loss became NaN or infinite ({raw}); lower --lr")
            adam.zero_grad(set_to_none=True)
            loss.backward()
            adam.step()
            done += 1
            history.append({"loss": loss.item(), **raw})
            # the strip before the checkpoint: a kill between the two redoes the step, never loses the strip
            if samples and (done % sample_every == 0 or done == steps):
                with torch.no_grad():
                    strip = sample_strip(fitting.paint, samples, device)
                images.save(strip, work / "samples" / f"step_{done:06d}.jpg")
            if done % checkpoint_every == 0 or done == steps:
                save_all()
            if callback is not None:
                elapsed = time.perf_counter() - start
                rate = (done - first) / elapsed
                callback(TrainStep(done, steps, loss.item(), raw, rate * batch, (steps - done) / rate))
    except KeyboardInterrupt:
        interrupted = True
        if done > first:
            save_all()
    return TrainResult(output, done, interrupted, time.perf_counter() - start, list(crops.skipped), history)


def train(styles: Sequence[str | os.PathLike], photos: str | os.PathLike, output: str | os.PathLike,
          settings: TrainSettings = TrainSettings(), *, samples: Sequence[str | os.PathLike] = (),
          sample_every: int = 100, checkpoint_every: int = 50, resume: bool = False,
          callback: Callable[[TrainStep], None] | None = None,
          device: str | torch.device | None = None) -> TrainResult:
    """Train a network for `styles` (blended by settings.style_blend) on the photos under `photos`.

    `samples` are fixed photos stylised into a strip every `sample_every` steps (never trained on).
    Ctrl-C saves a checkpoint and the model so far, then returns with interrupted=True; `resume`
    continues from the checkpoint in the work folder.
    """
    presets.check_range("sample_every", sample_every)
    presets.check_range("checkpoint_every", checkpoint_every)
    output = check_output(output)
    blend = list(settings.style_blend or [1.0] * len(styles))
    if len(blend) != len(styles):
        raise ValueError(f"{len(styles)} style images but {len(blend)} --style-blend weights; give one per style")
    check_fresh(output, resume)
    crops = Crops(find_photos(photos, exclude={Path(s) for s in samples}), settings.crop, seed=settings.seed)
    sample_imgs = [images.fit(images.load(s), 256) for s in samples]
    criterion = Perceptual(settings.criterion_config(), load_weights(None), device)
    dev = criterion.device
    style_imgs = _style_images(styles, settings.style_size, criterion.min_side)
    torch.manual_seed(settings.seed)
    net = TransformerNet(TransformerConfig(settings.width, settings.blocks, settings.skip)).to(dev)
    style_info = [style_record(img, Path(str(s)).name, w) for img, s, w in zip(style_imgs, styles, blend)]
    recipe = {**asdict(settings), "style_blend": blend}
    use_amp = criterion.dtype != torch.float32

    def loss(x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        terms = criterion.terms(x, style_imgs, blend)
        with torch.autocast(dev.type, dtype=criterion.dtype, enabled=use_amp):
            y = net(x)
        values = criterion.evaluate(y.float(), terms)
        raw = dict(zip(values, torch.stack([v.detach() for v in values.values()]).tolist()))
        return sum(w * values[t.name] for t, w in terms), raw

    def same_run(state: dict) -> bool:
        # a checkpoint from before the skip setting has none: it was the network without the skip
        saved = {"skip": False, **{k: v for k, v in state["settings"].items() if k != "steps"}}
        asked = {k: v for k, v in recipe.items() if k != "steps"}
        return saved == asked and [s["sha256"] for s in state["styles"]] == [s["sha256"] for s in style_info]

    def save(done: int) -> None:
        save_model(net, output, styles=style_info, training={**recipe, "steps_done": done})

    fitting = Fitting(net, loss, save, {"settings": recipe, "styles": style_info}, same_run,
                      lambda x: stylize_tensor(net, x))
    return fit(fitting, crops, output, steps=settings.steps, batch=settings.batch, lr=settings.lr, device=dev,
               samples=sample_imgs, sample_every=sample_every, checkpoint_every=checkpoint_every, resume=resume,
               callback=callback)

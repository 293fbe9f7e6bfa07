"""Any painting in one pass: whitening and colouring of the Caffe VGG16's features (Li et al. 2017,
"Universal style transfer via feature transforms"), with decoders trained on photos only.

The photo is encoded at relu4_1; its features are whitened (their covariance made the identity) and
coloured with the painting's covariance and mean; the relu4_1 decoder turns them back into pixels. That
picture is encoded again at relu3_1, transformed and decoded, and so on down to relu1_1: large shapes
first, fine texture last. `strength` mixes the transformed features with the picture's own at every
level. No painting is ever trained on: the decoders only learn to invert VGG on photos
(`train_decoders`, on the per-style networks' training loop), so any painting works at once.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.nn import functional as F

from .. import images, presets
from ..losses import relative_sq_error
from ..nets.decoder import ARCH, DecoderConfig, Decoders, level_name
from ..perceptual import Perceptual, fingerprint
from ..weights import load_weights
from ..whitening import statistics, transform
from .data import Crops, find_photos
from .infer import padded
from .modelfile import ModelError, build, check_output, read_file, save_model
from .train import Fitting, Settings, TrainResult, TrainStep, check_fresh, fit

DECODERS = Path(__file__).resolve().parents[1] / "assets" / "wct-decoders.safetensors"
# --strength when none is given: with the first decoders 0.8 beat 1 on both VGG distances on 5 of the 7 judged
# pairs and on content and edges on all 7, the embedding even (benchmarks/results/warm-start.md, 3); with the
# fine-tuned ones the same on both distances and on content and edges, the embedding 4 to 3 (wct-strength-s14.md)
STRENGTH = 0.8
STYLE_CACHE_SIZE = 4  # style statistics kept, one set per size and levels (a two-scale call uses two)


@dataclass(frozen=True)
class DecoderSettings(Settings):
    """Everything that shapes a set of trained decoders; saved in their header and checkpoint."""

    steps: int = 2000
    batch: int = 4
    crop: int = 128
    lr: float = 1e-3
    width: int = 32  # nets/decoder.py: half of VGG's widths
    levels: int = 4  # relu1_1 .. relu4_1
    feature_weight: float = 1.0  # against the pixel loss's 1: both relative squared errors
    precision: str = "auto"
    seed: int = 0
    # Fine-tuning: start from these decoders ("bundled" or a file; None: random weights), train only
    # `train_levels` (empty: all), and give a `transfer` share of each batch whitened and coloured features to
    # invert (train_decoders says why)
    fine_tune: str | None = None
    train_levels: tuple[int, ...] = ()
    transfer: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        presets.check_range("levels", self.train_levels, "train_levels")
        object.__setattr__(self, "train_levels", tuple(sorted(set(self.train_levels))))  # 4,3 is 3,4; 4,4 is 4
        if any(k > self.levels for k in self.train_levels):
            raise ValueError(f"--train-levels {','.join(map(str, self.train_levels))} names a level above --levels "
                             f"{self.levels}")
        if len(self.train_levels) < self.levels and self.train_levels and not self.fine_tune:
            raise ValueError("--train-levels trains only some decoders, and the others would stay random; give "
                             "--fine-tune DECODERS (or `bundled`) to take them from")
        if self.transfer and self.batch == 1:
            raise ValueError("--transfer colours a crop with another crop's statistics, so it needs --batch 2 or more")
        if self.transfer and not self.coloured:
            raise ValueError(f"--transfer {self.transfer:g} of a batch of {self.batch} is no crop; give at least "
                             f"{0.5 / self.batch:.2g}, or a larger --batch")
        step = 2 ** (self.levels - 1)  # each decoder upsamples by 2 from its pooled level
        if self.crop % step:
            raise ValueError(f"--crop {self.crop} is not a multiple of {step}, which {self.levels} decoder levels "
                             f"need; use --crop {max(step, self.crop // step * step)}")

    @property
    def coloured(self) -> int:
        """Crops of each batch that `transfer` colours (the share rounded half up)."""
        return int(self.batch * self.transfer + 0.5 + 1e-9)  # 1e-9: 25 x 0.58 is 14.499999... in floats


def encoder(levels: int, precision: str = "auto", device: str | torch.device | None = None) -> Perceptual:
    """The project's perceptual criterion, read only up to relu{levels}_1: the encoder of every decoder."""
    layers = tuple(level_name(k) for k in range(1, levels + 1))
    config = presets.Config(content_layers=layers[-1:], style_layers=layers, precision=precision, compile=False)
    return Perceptual(config, load_weights(None), device)


def load_decoders(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Decoders:
    """Decoders from a file `train_decoders` wrote (None: the bundled ones), float32, in eval mode."""
    path = Path(path or DECODERS)
    if not path.is_file():
        raise ModelError(f"{path}: no such decoder file; train decoders with `brushwork train-decoders` or "
                         f"give --decoders FILE")
    header, tensors = read_file(path)
    if header.get("arch") != ARCH:
        raise ModelError(f"{path}: holds a {header.get('arch')!r} network, not {ARCH}; give a file "
                         f"`brushwork train-decoders` wrote")
    raw = header.get("config")
    try:
        if not isinstance(raw, dict) or set(raw) != {"levels", "width"}:
            raise ValueError
        presets.check_range("width", raw["width"])
        config = DecoderConfig(**raw)
    except (ValueError, TypeError):
        raise ModelError(f"{path}: its header has no valid decoder config (want levels 1-4 and width, got "
                         f"{repr(raw)[:60]}); retrain or re-download it") from None
    probe = torch.full((1, config.deepest_channels, 2, 2), 100.0)
    net = build(path, ARCH, lambda: Decoders(config), tensors, lambda net: net(probe, config.levels))
    return net.eval().requires_grad_(False).to(device)


def check_options(strength: float, preserve_colors: str | None, style_scale: float) -> None:
    """The options the network can honour, checked before any work (a batch checks them before its jobs)."""
    presets.check_range("strength", strength)
    presets.check_range("style_scale", style_scale)
    if preserve_colors not in (None, "luminance"):
        raise ValueError(f"the arbitrary-style network keeps colours by luminance only, not "
                         f"{preserve_colors!r}; use --preserve-colors luminance")


class WCTStylizer:
    """Decoders and paintings loaded once, applied to many images (a video's frames).

    >>> paint = WCTStylizer(["starry.jpg"], strength=0.8)
    >>> paint("photo.jpg", 512).save("out.png")
    """

    def __init__(self, styles: Sequence[str | os.PathLike | Image.Image], *,
                 blend: Sequence[float] | None = None, strength: float = STRENGTH,
                 preserve_colors: str | None = None, style_scale: float = 1.0,
                 decoders: str | os.PathLike | None = None, device: str | torch.device | None = None,
                 precision: str = "auto", coarse: int | None = None) -> None:
        check_options(strength, preserve_colors, style_scale)
        if coarse is not None:
            presets.check_range("coarse", coarse)
        # Above `coarse` px the levels relu4_1 .. relu2_1 run at half the output's size (never under `coarse`)
        # and relu1_1 at full size: 2.8-3.0x faster at 1024 px on six of seven pairs, larger strokes, lower
        # VGG distances on most judged pairs but less of the photo's edges (benchmarks/results/wct-two-scale.md);
        # None: off
        self.coarse = coarse
        self.decoder_file = decoders or DECODERS
        self._set_styles(styles, blend)
        self.strength, self.preserve_colors, self.style_scale = strength, preserve_colors, style_scale
        decoders_net = load_decoders(decoders)
        self.perceptual = encoder(decoders_net.config.levels, precision, device)
        self.device, self.dtype = self.perceptual.device, self.perceptual.dtype
        self.decoders = decoders_net.to(self.device, self.dtype)

    def _set_styles(self, styles: Sequence[str | os.PathLike | Image.Image], blend: Sequence[float] | None) -> None:
        blend = list(blend or [1.0] * len(styles))
        if not styles or len(blend) != len(styles):
            raise ValueError(f"{len(styles)} style images but {len(blend)} --style-blend weights; give one per style")
        for w in blend:
            presets.check_range("style_blend", w)
        if sum(blend) <= 0:
            raise ValueError("the --style-blend weights add up to 0; give at least one positive weight")
        self.sources = [s for s in styles if isinstance(s, (str, os.PathLike))] + [self.decoder_file]
        self.styles = [(s, images.load(s)) for s in styles]
        self.blend = [w / sum(blend) for w in blend]
        self._cache: dict[tuple, dict[int, tuple[torch.Tensor, torch.Tensor]]] = {}

    def restyled(self, styles: Sequence[str | os.PathLike | Image.Image],
                 blend: Sequence[float] | None = None) -> WCTStylizer:
        """The same networks and options with other paintings: a batch's next painting costs its
        statistics, not a second copy of the encoder and decoders."""
        other = copy.copy(self)
        other._set_styles(styles, blend)
        return other

    def style_statistics(self, longest: int, levels: Sequence[int] | None = None
                         ) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """Per level (all the decoders' unless `levels`), the blended paintings' mean and covariance ** 1/2,
        with each painting fitted to `style_scale` times the picture's longest side; cached per size and levels."""
        size = max(2, round(longest * self.style_scale))
        levels = tuple(sorted(levels or range(1, self.decoders.config.levels + 1)))
        key = (tuple(fingerprint(img) for _, img in self.styles), tuple(self.blend), size, levels)
        if key not in self._cache:
            need, stats = (2 ** (levels[-1] - 1), {})
            layers = [level_name(k) for k in levels]
            for (source, img), w in zip(self.styles, self.blend):
                fitted = images.fit(img, size)
                if min(fitted.size) < need:
                    raise images.ImageError(
                        f"{source}: {img.size[0]}x{img.size[1]} pixels is too thin to read a style from at "
                        f"{fitted.size[0]}x{fitted.size[1]}; the network needs {need} px on each side: use a "
                        f"larger painting, or a larger --size or --style-scale")
                with torch.no_grad():
                    feats = self.perceptual.features(images.to_tensor(fitted, self.device), layers)
                for level, layer in zip(levels, layers):
                    mean, colour = statistics(feats[layer], 0.5)
                    old = stats.get(level, (0, 0))
                    stats[level] = (old[0] + w * mean, old[1] + w * colour)
            if len(self._cache) >= STYLE_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = stats
        return self._cache[key]

    def _run(self, x: torch.Tensor, longest: int, levels: Sequence[int]) -> torch.Tensor:
        """`levels`, coarse to fine, over one padded (1, 3, H, W) picture, H and W multiples of 2^(deepest - 1),
        with the painting fitted to `longest`."""
        out, stats = x, self.style_statistics(longest, levels)
        for level in levels:
            layer = level_name(level)
            f = self.perceptual.features(out, [layer])[layer]
            f = transform(f, stats[level], self.strength)
            out = self.decoders(f.to(self.dtype), level).float().clamp(0, 255)
        return out

    def _paint(self, x: torch.Tensor) -> torch.Tensor:
        """One (1, 3, H, W) picture: every level at its size, or above `coarse` the coarse levels at half."""
        h, w = x.shape[-2:]
        longest, deepest = max(h, w), self.decoders.config.levels
        side = longest if self.coarse is None else max(self.coarse, (longest + 1) // 2)
        if side >= longest or deepest == 1:
            return padded(x, 2 ** (deepest - 1), lambda p: self._run(p, longest, range(deepest, 0, -1)))
        small = F.interpolate(x, size=(max(1, round(h * side / longest)), max(1, round(w * side / longest))),
                              mode="area")
        out = padded(small, 2 ** (deepest - 1), lambda p: self._run(p, side, range(deepest, 1, -1)))
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        return padded(out, 1, lambda p: self._run(p, longest, [1]))

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels to stylised float32 pixels of the same shape, 0-255."""
        x = x.to(self.device).float()
        with torch.no_grad():
            out = torch.cat([self._paint(one[None]) for one in x])
        if self.preserve_colors == "luminance":
            out = images.luminance_transfer(out, x)
        return out

    def __call__(self, image: str | os.PathLike | Image.Image, size: int | None = None) -> Image.Image:
        """The stylised image; `size` is the longest side (None keeps the photo's size)."""
        photo = images.fit(images.load(image), size)
        return images.to_image(self.tensor(images.to_tensor(photo, self.device)))


def stylize(content: str | os.PathLike | Image.Image, styles: Sequence[str | os.PathLike | Image.Image], *,
            size: int | None = 512, **options: object) -> Image.Image:
    """One call: `content` in the style of `styles` (WCTStylizer's options: blend, strength, ...)."""
    return WCTStylizer(styles, **options)(content, size)


def coloured(f: torch.Tensor, keep: int, pick: torch.Generator) -> torch.Tensor:
    """Crops keep.. of the features `f` (B, C, H, W), each whitened and coloured with another crop's statistics
    at a strength of 0.5-1: the maps a stylisation hands a decoder, which a photo's own never are."""
    out = []
    for i in range(keep, len(f)):
        j = (i + 1 + int(torch.randint(len(f) - 1, (), generator=pick))) % len(f)
        strength = 0.5 + 0.5 * float(torch.rand((), generator=pick))
        out.append(transform(f[i:i + 1].float(), statistics(f[j:j + 1], 0.5), strength))
    return torch.cat(out).to(f.dtype)


def train_decoders(photos: str | os.PathLike, output: str | os.PathLike,
                   settings: DecoderSettings = DecoderSettings(), *, samples: Sequence[str | os.PathLike] = (),
                   sample_every: int = 100, checkpoint_every: int = 50, resume: bool = False,
                   callback: Callable[[TrainStep], None] | None = None,
                   device: str | torch.device | None = None) -> TrainResult:
    """Train decoders to invert VGG16 at relu1_1 .. relu{levels}_1 on the photos under `photos`: each
    decoder's picture is held to the photo in pixels and in its own layer's features (Li et al. 2017).

    With `settings.transfer` a share of each batch is first whitened and coloured with another crop's
    statistics, and the decoder is held to those features alone: a decoder trained on photos' own maps only
    is far off on coloured ones, which are all it gets when stylising (`benchmarks/results/fast-s14.md`).
    `fine_tune` and `train_levels` continue a set of decoders, training only some of them.

    The loop is the per-style networks' (`train.fit`): checkpoint, `resume`, Ctrl-C and sample strips
    (the photos `samples` through the deepest decoder) work alike."""
    presets.check_range("sample_every", sample_every)
    presets.check_range("checkpoint_every", checkpoint_every)
    output = check_output(output)
    check_fresh(output, resume)
    start = DECODERS if settings.fine_tune == "bundled" else Path(settings.fine_tune) if settings.fine_tune else None
    if start is not None and not start.is_file():
        raise ModelError(f"{start}: no such decoder file to fine-tune; give --fine-tune a file that "
                         f"`brushwork train-decoders` wrote, or `bundled`")
    crops = Crops(find_photos(photos, exclude={Path(s) for s in samples}), settings.crop, seed=settings.seed)
    sample_imgs = [images.fit(images.load(s), 256) for s in samples]
    perceptual = encoder(settings.levels, settings.precision, device)
    dev = perceptual.device
    torch.manual_seed(settings.seed)
    net = Decoders(DecoderConfig(settings.levels, settings.width)).to(dev)
    recipe = asdict(settings)
    if start is not None:
        begun = load_decoders(start)
        if begun.config != net.config:
            raise ModelError(f"{start}: holds {begun.config.levels} decoder levels at width {begun.config.width}; "
                             f"fine-tune it with --levels {begun.config.levels} --width {begun.config.width}")
        net.load_state_dict(begun.state_dict())
        recipe["fine_tune_sha256"] = hashlib.sha256(start.read_bytes()).hexdigest()
    trained = settings.train_levels or tuple(range(1, settings.levels + 1))
    for level, decoder in enumerate(net.decoders, 1):
        decoder.requires_grad_(level in trained)
    use_amp = perceptual.dtype != torch.float32
    # which crop colours which, and how strongly; a resumed run draws afresh (its crops are the same per step)
    pick = torch.Generator().manual_seed(settings.seed)

    def loss(x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            targets = perceptual.features(x, [level_name(k) for k in trained])
        keep = len(x) - settings.coloured  # these crops rebuild their photo; the rest are coloured
        total, raw = torch.zeros((), device=dev), {}
        for level in trained:
            f = targets[level_name(level)]
            if keep < len(x):
                with torch.no_grad():
                    f = torch.cat([f[:keep], coloured(f, keep, pick)])
            with torch.autocast(dev.type, dtype=perceptual.dtype, enabled=use_amp):
                y = net(f, level)
            y = y.float()
            again = perceptual.features(y, [level_name(level)])[level_name(level)]
            if keep:
                pixel = relative_sq_error(y[:keep], x[:keep])
                feature = relative_sq_error(again[:keep], f[:keep])
                total = total + pixel + settings.feature_weight * feature
                raw[f"pixel{level}"], raw[f"feature{level}"] = pixel.item(), feature.item()
            if keep < len(x):  # no photo to match in pixels: only the coloured features
                moved = relative_sq_error(again[keep:], f[keep:])
                total = total + settings.feature_weight * moved
                raw[f"transfer{level}"] = moved.item()
        return total, raw

    def reconstruct(x: torch.Tensor) -> torch.Tensor:
        deepest = net.layers[-1]
        return padded(x, 2 ** (settings.levels - 1),
                      lambda p: net(perceptual.features(p, [deepest])[deepest].float(), settings.levels))

    def same_run(state: dict) -> bool:
        drop = lambda d: {k: v for k, v in d.items() if k != "steps"}  # noqa: E731
        # a checkpoint from before fine-tuning existed has none of its settings: it was a run without them
        saved = {"fine_tune": None, "train_levels": (), "transfer": 0.0, **state["settings"]}
        saved["train_levels"] = tuple(sorted(set(saved["train_levels"])))
        return drop(saved) == drop(recipe)

    def save(done: int) -> None:
        save_model(net, output, styles=[], training={**recipe, "steps_done": done})

    fitting = Fitting(net, loss, save, {"settings": recipe}, same_run, reconstruct)
    return fit(fitting, crops, output, steps=settings.steps, batch=settings.batch, lr=settings.lr, device=dev,
               samples=sample_imgs, sample_every=sample_every, checkpoint_every=checkpoint_every, resume=resume,
               callback=callback)

"""The `brushwork` command: parses arguments and calls the Python API, nothing more."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import images, presets
from .assets import DEMO_CONTENT, DEMO_MODEL, DEMO_STYLE
from .video import FLOW, FLOW_METHODS, FLOW_SIZE, TEMPORAL_FRAMES, TEMPORAL_WEIGHT
from .errors import BrushworkError, OptionError, raise_interrupt

if TYPE_CHECKING:
    from .feedforward.train import TrainSettings

EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 2, 1, 130
DEMO_IMAGE_OUTPUT = "brushwork-demo.png"


def _number(name: str):
    """An argparse `type` for the setting `name`: parsed, and checked against `presets.RANGES`.

    Out of range is argparse's one-line usage error (exit 2), before anything is loaded or computed.
    """
    limit = presets.RANGES[name]

    def parse(text: str) -> int | float:
        try:
            value = limit.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(limit.complaint(text)) from None
        try:
            limit.check(name, value)
        except OptionError:
            raise argparse.ArgumentTypeError(limit.complaint(value)) from None
        return value

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def max_memory(text: str) -> int:
    """--max-memory: a size in bytes (checked against `presets.RANGES`), or argparse's one-line usage error."""
    from .memory import parse_size

    try:
        value = parse_size(text)
        presets.check_range("max_memory", value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _numbers(name: str):
    """Like `_number`, for a comma-separated list ('' gives an empty tuple)."""
    one = _number(name)

    def parse(text: str) -> tuple:
        return tuple(one(v) for v in text.split(",") if v.strip())

    parse.__name__ = name
    return parse


def _method_options(p: argparse.ArgumentParser, model_help: str, fast: bool = False) -> None:
    """--style/--model/--style-blend: the paintings for the optimiser, or a trained network; with `fast`
    also --fast: any painting through the arbitrary-style network."""
    p.add_argument("--style", "-s", nargs="+", help="one or more style images")
    p.add_argument("--model", "-m", help=model_help)
    p.add_argument("--style-blend", type=_numbers("style_blend"), metavar="W1,W2",
                   help="blend weights, one per style image")
    if fast:
        p.add_argument("--fast", action="store_true",
                       help="paint --style in one pass with the arbitrary-style network (WCT), no training and "
                            "no optimisation; keeps --size, --style-blend, --style-scale, --preserve-colors "
                            "luminance, --precision and --device")
        p.add_argument("--decoders", metavar="FILE",
                       help="with --fast: decoders from `brushwork train-decoders` (default: the bundled ones)")


def _run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `stylize`, `demo`, `video` and `batch`: the knobs of one run."""
    g = p.add_argument_group("run")
    g.add_argument("--preset", default="default", choices=sorted(presets.PRESETS),
                   help="recipe to start from (default: %(default)s; 'subtle' is the lighter, more photographic "
                        "look, 'seed' the livestream's)")
    g.add_argument("--size", type=_number("size"), help="longest side of the output in pixels")
    g.add_argument("--iterations", type=_number("iterations"), help="optimisation steps at full size")
    g.add_argument("--strength", type=_number("strength"), metavar="S",
                   help="how far towards the painting, 0 (the photo) to 1 (all painting): a content distance fitted "
                        "on the shared pairs that the run steers its style weight to, so about the same balance "
                        "on every photo and painting (0.5: style weight 2, the subtle preset's, on an average pair; "
                        "default: the preset's own weights, style goal and histogram term); with --fast, the share of the painting's statistics (default 0.8)")
    g.add_argument("--content-weight", type=_number("content_weight"), help="instead of --strength")
    g.add_argument("--style-weight", type=_number("style_weight"), help="instead of --strength")
    g.add_argument("--style-goal", type=_number("style_goal"), metavar="G",
                   help="raise the style weight (up to 16x) while the run's own style loss, a relative Gram distance "
                        "weighted by its style layer weights, is above G, at every pyramid level (the default preset's: "
                        "0.05; not in video); 0 is off, "
                        "as it is when --strength or a weight is given")
    g.add_argument("--histogram-weight", type=_number("histogram_weight"), metavar="W",
                   help="weight of the pull of each relu1_1 channel to the painting's whole distribution of values "
                        "(Risser et al. 2017's histogram loss: its palette and strokes, not only their Gram); the "
                        "default preset's 2 beat neural-style's style embedding on 18 of 19 pairs at 256 px (14 "
                        "without it) for about 1.3x the time; 0 is off (the subtle preset's, and with "
                        "--strength or weights unless given); refused with --mask, --keep-mask and video, where the "
                        "preset's goes without it, as does a picture's full size when memory is short, "
                        "whole or in tiles")
    g.add_argument("--tv-weight", type=_number("tv_weight"), help="total-variation (denoise) weight")
    g.add_argument("--optimizer", choices=["lbfgs", "adam", "gd"])
    g.add_argument("--lr", type=_number("lr"),
                   help="Adam learning rate / GD step size, in 0-255 pixel units")
    g.add_argument("--history", type=_number("history"), metavar="N",
                   help="L-BFGS memory in steps (default 20; each costs two image-sized float32 buffers)")
    g.add_argument("--init", help="content, palette (the photo in the painting's colours), noise, style, fast "
                                  "(the --fast picture: a warm start), or a path to an image")
    g.add_argument("--style-scale", type=_number("style_scale"),
                   help="style image size relative to the output")
    g.add_argument("--preserve-colors", choices=["luminance", "histogram"],
                   help="keep the photo's colours: luminance-only transfer or colour histogram matching")
    g.add_argument("--content-layers", type=lambda s: tuple(s.split(",")), metavar="L1,L2")
    g.add_argument("--style-layers", type=lambda s: tuple(s.split(",")), metavar="L1,L2")
    g.add_argument("--style-layer-weights", type=_numbers("style_layer_weights"), metavar="W1,W2")
    g.add_argument("--arch", choices=["vgg16", "vgg19"])
    g.add_argument("--pooling", choices=["max", "avg"])
    g.add_argument("--weights", help="network weights: a registry name or a .safetensors / Keras .h5 file")
    g.add_argument("--pyramid", type=_numbers("pyramid"), metavar="F1,F2",
                   help="solve first at these fractions of the size (e.g. 0.25,0.5): more large-scale "
                        "style, less content; the preset's own by default, '' for none")
    g.add_argument("--pyramid-iterations", type=_numbers("pyramid_iterations"), metavar="N1,N2",
                   help="iterations at each pyramid level (default: half of --iterations each)")
    g.add_argument("--pyramid-px", type=_number("pyramid_px"), metavar="N",
                   help="add halves of the coarsest pyramid level until it is at most N px (the default "
                        "preset's: 32); 0 for exactly --pyramid's levels")
    g.add_argument("--pyramid-detail", type=_number("pyramid_detail"), metavar="D",
                   help="share (0-1) of the photo's detail finer than a pyramid level added as its picture is "
                        "enlarged to the next, so outlines and faces start sharp rather than blurred, whatever the "
                        "--init, though at 512 px and above some pictures keep less of the painting (1: the whole band; "
                        "default 0, which enlarges alone; nothing without a pyramid); refused in video, whose frames go "
                        "without it")
    g.add_argument("--precision", choices=["auto", "float32", "bfloat16"])
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the network (default: on CUDA only; off for a --model photo, one pass)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    g.add_argument("--max-memory", type=max_memory, metavar="SIZE",
                   help="memory the run may use, e.g. 8G or 1500M (default: what is free when it starts); a "
                        "size that cannot fit stops at once, naming one that does")
    g.add_argument("--seed", type=_number("seed"), help="make the run reproducible on this machine")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.add_argument("--overwrite", action="store_true",
                   help="allow the output to replace one of the run's own input files")


def _config(args: argparse.Namespace) -> presets.Config:
    config = presets.get(args.preset)
    given = [flag for flag, value in (("--content-weight", args.content_weight), ("--style-weight", args.style_weight))
             if value is not None]
    # with --fast, --strength is the network's (cmd_batch passes it on), not the optimiser's
    strength = None if getattr(args, "fast", False) else args.strength
    if strength is not None and given:
        raise OptionError(f"--strength sets the loss weights for each photo and painting; give --strength or "
                          f"{' and '.join(given)}, not both")
    if args.pyramid is not None and args.pyramid_iterations is None:
        args.pyramid_iterations = ()  # --pyramid alone: the engine's per-level default, or off with ''
    return config.with_(
        size=args.size, iterations=args.iterations, strength=strength, content_weight=args.content_weight,
        style_weight=args.style_weight, style_goal=args.style_goal, histogram_weight=args.histogram_weight,
        tv_weight=args.tv_weight, optimizer=args.optimizer,
        lr=args.lr,
        history=args.history, init=args.init, style_scale=args.style_scale,
        preserve_colors=args.preserve_colors,
        content_layers=args.content_layers, style_layers=args.style_layers,
        style_layer_weights=args.style_layer_weights, arch=args.arch, pooling=args.pooling,
        pyramid=args.pyramid, pyramid_iterations=args.pyramid_iterations, pyramid_px=args.pyramid_px,
        pyramid_detail=args.pyramid_detail,
        precision=args.precision,
        compile=args.compile)


def _progress(args: argparse.Namespace, output: Path, print_every: int = 0):
    """A callback drawing a progress bar with the losses, saving snapshots, printing the seed's values."""
    from tqdm import tqdm

    bar = None if args.quiet else tqdm(total=1, unit="it", dynamic_ncols=True, leave=True)
    every = getattr(args, "snapshot_every", 0) or 0

    def callback(step) -> None:
        if bar is not None:
            bar.total = step.total
            bar.set_postfix({k: f"{v:.3g}" for k, v in step.losses.items()}, refresh=False)
            bar.update(1)
        i = step.iteration - 1  # the notebook counts from 0
        if print_every and step.adjustments and (i % print_every == 0 or step.iteration == step.total):
            a = step.adjustments
            msg = (f"Iteration: {i}\nWeight Adj. for Content: {a['content']:.2e}, "
                   f"Style: {a['style']:.2e}, Denoise: {a.get('tv', 0.0):.2e}")
            (bar.write if bar is not None else print)(msg)
        nonlocal every
        if every and step.iteration % every == 0:
            try:
                images.save(step.image, _snapshot_path(output, step.iteration))
            except images.ImageError as exc:  # a full disk must not cost the run itself
                every = 0
                (bar.write if bar is not None else print)(f"brushwork: warning: {exc}; no more snapshots",
                                                          file=sys.stderr)

    return callback, bar


def _snapshot_path(output: Path, iteration: int) -> Path:
    return output.with_name(f"{output.stem}.{iteration:05d}{output.suffix}")


def _inputs(args: argparse.Namespace, config: presets.Config, content, styles) -> list:
    """Every file the run reads, so none of them is written over."""
    return [content, *styles, *(args.mask or ()), args.keep_mask, config.init_file(), args.weights]


def _check_outputs(output: Path, every: int, inputs: list, overwrite: bool) -> None:
    """Refuse now, not after minutes of work, to write the result or a snapshot over an input."""
    images.check_not_an_input(output, inputs, overwrite)
    if not every:
        return
    snapshot = re.compile(rf"{re.escape(output.stem)}\.(\d{{5,}}){re.escape(output.suffix)}")
    for source in inputs:
        if isinstance(source, (str, os.PathLike)) and Path(source).exists():
            for name in {Path(source).name, Path(source).resolve().name}:
                found = snapshot.fullmatch(name)
                if found and int(found[1]) > 0 and int(found[1]) % every == 0:
                    images.check_not_an_input(_snapshot_path(output, int(found[1])), [source], overwrite)


def _stylize(args: argparse.Namespace, content, styles) -> int:
    from . import tiles
    from .optimise import Stylizer

    config = _config(args)
    if args.histogram_weight and (args.mask or args.keep_mask):  # the preset's own goes without (perceptual.terms)
        raise OptionError("--histogram-weight matches the whole picture's distribution, which regions and a kept "
                          "face do not have; leave it out with --mask or --keep-mask")
    output = images.check_writable(args.output)
    _check_outputs(output, args.snapshot_every, _inputs(args, config, content, styles), args.overwrite)
    key = _run_key(args, config, content, styles)
    resume = tiles.read_partial(output, key) if args.resume else None
    stylizer = Stylizer(config, weights=args.weights, device=args.device, max_memory=args.max_memory)
    callback, bar = _progress(args, output, config.print_every)
    result = stylizer.run(content, styles, style_blend=args.style_blend, callback=callback, seed=args.seed,
                          masks=args.mask, keep_mask=args.keep_mask, init=output if resume else None, resume=resume)
    if bar is not None:
        bar.close()
    _save_result(lambda path: images.save(result.image, path), output)
    if result.partial is not None:
        tiles.write_partial(output, result.partial, key)
        print(f"interrupted: {result.partial.done} of {config.iterations} full-size iterations done; the picture "
              f"so far is in {output}: rerun the same command with --resume to finish it", file=sys.stderr)
        return EXIT_INTERRUPTED
    tiles.partial_path(output).unlink(missing_ok=True)
    return _finished(result, output, "image")


def _run_key(args: argparse.Namespace, config: presets.Config, content, styles) -> str:
    """What a resumed print-size run must share with the stopped one: settings and the inputs' content."""
    import hashlib
    import json

    from .weights import file_hash

    def identity(source) -> str | None:
        return file_hash(Path(source), "sha256") if isinstance(source, (str, os.PathLike)) and \
            Path(source).is_file() else None if source is None else str(source)

    parts = [config.record(), [identity(s) for s in (content, *styles, *(args.mask or ()), args.keep_mask)],
             args.style_blend, args.seed, args.weights]
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=16).hexdigest()


def _finished(result, output: Path, what: str) -> int:
    if result.interrupted:
        print(f"interrupted after {result.iterations} iterations; best {what} so far saved to {output}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(output.resolve())
    return 0


def _save_result(save: Callable[[Path], Path], output: Path) -> Path:
    """Save the finished result with `save`; if the output cannot take it (a full disk, a read-only
    folder), keep it in the temporary folder rather than lose minutes of work, and say where."""
    try:
        return save(output)
    except images.ImageError as exc:
        fallback = Path(tempfile.gettempdir()) / f"brushwork-{os.getpid()}-{output.name}"
        try:
            save(fallback)
        except images.ImageError:
            raise exc from None
        raise images.ImageError(f"{exc}; the result was saved to {fallback} instead") from None


def _method(args: argparse.Namespace) -> str:
    """Which method paints: "model" (a trained network, --model), "fast" (any painting through the
    arbitrary-style network, --style with --fast) or "optimise" (--style alone)."""
    fast = getattr(args, "fast", False)
    if args.model is not None and args.style is not None:
        raise ValueError("give --style or --model, not both: a model already holds its style")
    if args.model is not None and fast:
        raise ValueError("give --fast or --model, not both: --fast paints any --style without a trained model")
    if args.model is not None and args.strength is not None:
        raise ValueError("--strength applies to --style (the optimiser, or --fast); a --model's strength was set "
                         "when it was trained: leave --strength out")
    if args.model is None and args.style is None:
        raise ValueError("give --style IMAGE (the optimiser; with --fast the arbitrary-style network) or "
                         "--model NAME (a trained network)")
    return "model" if args.model is not None else "fast" if fast else "optimise"


def _fast_painter(args: argparse.Namespace):
    """The arbitrary-style network for --fast, with the run's paintings and options."""
    from .feedforward.wct import STRENGTH, WCTStylizer

    return WCTStylizer(args.style, blend=args.style_blend, strength=STRENGTH if args.strength is None else args.strength,
                       preserve_colors=args.preserve_colors, style_scale=args.style_scale or 1.0,
                       decoders=args.decoders, device=args.device, precision=args.precision or "auto")


def cmd_stylize(args: argparse.Namespace) -> int:
    method = _method(args)
    if method == "model":
        return _instant(args)
    if method == "fast":
        return _fast(args)
    _refuse_fast_options(args)
    return _stylize(args, args.content, args.style)


def _refuse_fast_options(args: argparse.Namespace) -> None:
    """--decoders without --fast: the optimiser has none to choose (its warm start, --init fast, uses the
    bundled decoders)."""
    if getattr(args, "decoders", None) is not None:
        raise OptionError("--decoders applies to --fast only; add --fast, or leave --decoders out")


def _instant(args: argparse.Namespace) -> int:
    for option, given in (("--mask", args.mask), ("--keep-mask", args.keep_mask), ("--resume", args.resume),
                          ("--max-memory", args.max_memory)):
        if given:
            raise OptionError(f"{option} is for the optimiser's runs (--style); a --model paints in one pass "
                              f"without it: leave it out")
    _paint_instant(args, args.content, args.model, images.check_writable(args.output))
    return 0


def _fast(args: argparse.Namespace) -> int:
    if args.mask or args.keep_mask:
        raise OptionError("--mask and --keep-mask steer the optimiser; use them with --style, not --fast")
    _paint_once(args, args.content, [*args.style, args.decoders], lambda: _fast_painter(args),
                images.check_writable(args.output))
    return 0


def _paint_instant(args: argparse.Namespace, content, model, output: Path) -> None:
    """One pass of a trained network over `content`, saved to `output`, whose path is printed."""
    from .feedforward.infer import InstantStylizer

    # one pass never pays for compiling (a minute per input size), so only an explicit --compile does it
    _paint_once(args, content, [model], lambda: InstantStylizer(
        model, device=args.device, precision=args.precision or "auto", compile=bool(args.compile)), output)


def _paint_once(args: argparse.Namespace, content, inputs: list, make: Callable, output: Path) -> None:
    """A network that paints in one pass (`make()` builds it once `output` is known not to be an input)."""
    images.check_not_an_input(output, [content, *inputs], args.overwrite)
    image = make()(content, args.size)
    _save_result(lambda path: images.save(image, path), output)
    print(output.resolve(), flush=True)


def cmd_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import batch

    method = _method(args)
    if not args.fast:
        _refuse_fast_options(args)
    config = _config(args)
    settings = batch.Settings(config=config, style_blend=args.style_blend, model=args.model, fast=args.fast,
                              **({} if args.strength is None else {"strength": args.strength}), decoders=args.decoders,
                              size=args.size if method != "optimise" else None, seed=args.seed,
                              weights=args.weights, device=args.device, max_memory=args.max_memory)
    plan = batch.plan(args.photos, args.style or (), args.output, settings, retry_failed=args.retry_failed,
                      overwrite=args.overwrite)
    skipped = len(plan.jobs) - len(plan.todo)
    bar = None if args.quiet else tqdm(total=len(plan.todo), unit="img", dynamic_ncols=True)
    try:
        for outcome in batch.run(plan, workers=args.workers, ray=args.ray):
            if outcome.error is not None:
                (bar.write if bar is not None else print)(f"failed: {outcome.job.output}: {outcome.error}",
                                                          file=sys.stderr)
            if bar is not None:
                bar.update(1)
    except KeyboardInterrupt:
        print(f"interrupted; {plan.done} finished results are kept in {plan.output}: rerun the same command "
              f"to do the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    failed = plan.failed()
    print(f"{plan.done} of {len(plan.jobs)} done ({skipped} skipped as recorded by an earlier run), "
          f"{len(failed)} failed; contact sheet: {(plan.output / batch.INDEX).resolve()}")
    for job, reason in failed:
        print(f"  failed: {job.output}: {reason}", file=sys.stderr)
    if failed:
        print("rerun with --retry-failed to try the failed ones again", file=sys.stderr)
    return EXIT_ERROR if failed else 0


def _training(args: argparse.Namespace, run: Callable) -> int:
    """Run `run(samples, callback)` (a training on the shared loop) with a progress bar, then report."""
    from tqdm import tqdm

    from .feedforward.train import work_folder

    bar = None

    def progress(step) -> None:
        nonlocal bar
        if bar is None and not args.quiet:  # drawn once training runs, after the inputs are checked
            bar = tqdm(total=step.total, initial=step.step - 1, unit="step", dynamic_ncols=True)
        if bar is not None:
            bar.n = step.step
            bar.set_postfix({**{k: f"{v:.3g}" for k, v in step.losses.items()}, "img/s": f"{step.images_per_s:.2f}"},
                            refresh=False)
            bar.refresh()

    samples = args.samples if args.samples is not None else [str(DEMO_CONTENT)]
    result = run(samples, progress)
    if bar is not None:
        bar.close()
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable photo(s), e.g. {result.skipped[0]}", file=sys.stderr)
    if result.interrupted:
        print(f"interrupted at step {result.steps}; the model so far is in {result.output} and the checkpoint "
              f"in {work_folder(result.output)}: rerun with --resume to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(Path(result.output).resolve())
    return 0


def train_settings(args: argparse.Namespace) -> TrainSettings:
    """The recipe a `brushwork train` command line asks for (also how a bundled model's recorded
    command is checked against its header)."""
    from .feedforward.train import TrainSettings

    return TrainSettings().with_(
        steps=args.steps, batch=args.batch, crop=args.crop, style_size=args.style_size, lr=args.lr,
        width=args.width, skip=args.skip, content_weight=args.content_weight, style_weight=args.style_weight,
        tv_weight=args.tv_weight, precision=args.precision, seed=args.seed, style_blend=args.style_blend)


def cmd_train(args: argparse.Namespace) -> int:
    from .feedforward import modelfile
    from .feedforward.train import train

    if args.output is None:
        modelfile.user_dir().mkdir(parents=True, exist_ok=True)
        args.output = modelfile.user_dir() / f"{Path(args.style[0]).stem}{modelfile.SUFFIX}"
    settings = train_settings(args)
    return _training(args, lambda samples, progress: train(
        args.style, args.photos, args.output, settings, samples=samples, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, resume=args.resume, callback=progress, device=args.device))


def cmd_train_decoders(args: argparse.Namespace) -> int:
    from .feedforward.wct import DecoderSettings, train_decoders

    settings = DecoderSettings().with_(
        steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr, width=args.width, levels=args.levels,
        feature_weight=args.feature_weight, precision=args.precision, seed=args.seed, fine_tune=args.fine_tune,
        train_levels=args.train_levels, transfer=args.transfer)
    return _training(args, lambda samples, progress: train_decoders(
        args.photos, args.output, settings, samples=samples, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, resume=args.resume, callback=progress, device=args.device))


def cmd_models(args: argparse.Namespace) -> int:
    from .feedforward.modelfile import list_models, user_dir

    rows = list_models()
    for name, where, path, header in rows:
        if header is None:
            print(f"{name:16} {where:8} unreadable: {path}")
            continue
        styles = " + ".join(s["name"] for s in header["styles"])
        steps = header["training"].get("steps_done", "?")
        took = f"{header['recipe']['minutes']:g} min" if "recipe" in header else ""
        print(f"{name:16} {where:8} width {header['config']['width']:<3} {steps:>6} steps {took:>8}  {styles}")
    if not rows:
        print(f"no models yet; train one with `brushwork train STYLE.jpg --photos DIR` (saved in {user_dir()})")
    return 0


def cmd_audio(args: argparse.Namespace) -> int:
    return _audio(args, args.content, args.style)


def _audio(args: argparse.Namespace, content, style) -> int:
    from . import audio

    settings = audio.preset(args.preset).with_(
        rate=args.rate, iterations=args.iterations, content_weight=args.content_weight,
        style_weight=args.style_weight)
    output = audio.check_output(args.output)
    picture = images.check_writable(args.spectrogram) if args.spectrogram else None
    for path in (output, picture):
        if path is not None:
            images.check_not_an_input(path, [content, style], args.overwrite)
    if picture is not None and images.same_file(picture, output):
        raise audio.AudioError(f"{picture}: is also the sound output; choose another --spectrogram path")
    wave_c, wave_s = audio.load(content, settings.rate), audio.load(style, settings.rate)
    callback, bar = _progress(args, output)
    result = audio.stylize(wave_c, wave_s, settings, seed=args.seed, callback=callback, device=args.device)
    if bar is not None:
        bar.close()
    _save_result(lambda path: audio.save(result.wave, path, result.rate), output)
    if picture is not None:
        sheet = audio.spectrogram_picture([("content", wave_c), ("style", wave_s), ("result", result.wave)],
                                          result.rate)
        _save_result(lambda path: images.save(sheet, path), picture)
    return _finished(result, output, "sound")


# the options of _run_options that demo --audio uses; the rest shape an image only
_DEMO_AUDIO_OPTIONS = {"iterations", "content_weight", "style_weight", "device", "seed", "quiet", "overwrite"}


def _image_options_given(args: argparse.Namespace) -> list[str]:
    """The image-only run options given a value other than their default, as flags (--size, ...)."""
    run = argparse.ArgumentParser()
    _run_options(run)
    return [f"--{name.replace('_', '-')}" for name, default in vars(run.parse_args([])).items()
            if name not in _DEMO_AUDIO_OPTIONS and getattr(args, name) != default]


def cmd_demo(args: argparse.Namespace) -> int:
    if args.audio:
        from .assets import DEMO_SPEECH, DEMO_WHALE

        if given := _image_options_given(args):
            raise OptionError(f"demo --audio: {', '.join(given)} shape an image, not a sound; for sound options "
                              f"run brushwork audio CONTENT --style STYLE [--preset ulyanov]")
        if args.output == DEMO_IMAGE_OUTPUT:
            args.output = "brushwork-demo.wav"
        return _audio(args, DEMO_SPEECH, DEMO_WHALE)
    if args.spectrogram:
        raise OptionError("--spectrogram draws a sound's spectrograms; use it with demo --audio")
    if args.size is None:
        args.size = 256
    # the bundled Starry Night network first (under a second), then the optimiser's slower, closer result
    output = images.check_writable(args.output)
    _paint_instant(args, DEMO_CONTENT, DEMO_MODEL, output.with_name(f"{output.stem}-instant{output.suffix}"))
    return _stylize(args, DEMO_CONTENT, [DEMO_STYLE])


def cmd_video(args: argparse.Namespace) -> int:
    from .video import stylize_video, work_folder

    if _method(args) != "optimise":
        return _instant_video(args)
    if args.style_goal:
        raise OptionError("--style-goal: video frames keep fixed weights (a goal steered frame by frame would "
                          "change the balance from one frame to the next); leave it out, or use --strength")
    if args.histogram_weight:
        raise OptionError("--histogram-weight: video frames go without the histogram term (its ranks, matched "
                          "afresh in each frame, were never measured for flicker); leave it out")
    if args.pyramid_detail:
        raise OptionError("--pyramid-detail: video frames enlarge their pyramid levels without the photo's detail "
                          "(their flicker was measured so); leave it out")
    try:
        result = stylize_video(
            args.input, args.style, args.output, config=_config(args), style_blend=args.style_blend,
            temporal_weight=args.temporal_weight, later_iterations=args.later_iterations,
            flow_method=args.flow, flow_size=args.flow_size, temporal_frames=args.temporal_frames,
            resume=args.resume, keep_frames=args.keep_frames,
            max_frames=args.max_frames, fps=args.fps, progress=not args.quiet, weights=args.weights,
            device=args.device, seed=args.seed, overwrite=args.overwrite, max_memory=args.max_memory)
    except KeyboardInterrupt:
        work = work_folder(args.output)
        kept = f"; finished frames are kept in {work}, rerun with --resume to continue" if work.exists() else ""
        print(f"interrupted{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(result.output)
    return 0


def _instant_video(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .feedforward.infer import stylize_video

    bar = None if args.quiet else tqdm(unit="frame", dynamic_ncols=True)

    def progress(index: int, total: int | None) -> None:
        if bar is not None:
            bar.total = total
            bar.update(1)

    blend = {} if args.temporal_blend is None else {"temporal": args.temporal_blend}
    paint = args.model if args.model is not None else _fast_painter(args)
    result = stylize_video(args.input, paint, args.output, size=args.size, **blend, flow_method=args.flow,
                           max_frames=args.max_frames, fps=args.fps, callback=progress, device=args.device,
                           precision=args.precision or "auto", compile=args.compile, overwrite=args.overwrite)
    if bar is not None:
        bar.close()
    print(result.output)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    try:
        from .ui import Limits, serve
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "gradio":
            raise
        raise OptionError("the web page needs Gradio, which is not installed: pip install 'brushwork[ui]'") from None
    limits = Limits(upload_mb=args.max_upload_mb, megapixels=args.max_megapixels,
                    video_seconds=args.max_video_seconds)
    serve(args.host, args.port, open_browser=args.open, jobs=args.jobs, limits=limits,
          device=args.device)  # prints the address, serves until Ctrl-C
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import audio
    from .evaluate import distances

    if audio.is_sound_file(args.output):
        if args.layers:
            raise ValueError(f"{args.output}: --layers is for images; a sound's style distance is one figure")
        d = audio.distances(args.output, args.content, args.style)
    else:
        d = distances(args.output, args.content, args.style, device=args.device)
    print(f"content {d.content:.4f}\nstyle   {d.style:.4f}")
    if args.layers:
        for layer, value in d.style_layers.items():
            print(f"  {layer} {value:.4f}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from . import weights

    if args.action == "list":
        for name, arch, status, size in weights.list_weights():
            print(f"{name:8} {arch:6} {size / 1e6:6.1f} MB  {status}")
    elif args.action == "fetch":
        print(weights.fetch(args.name))
    else:
        print(weights.weights_path(args.name))
    return 0


def _training_options(p: argparse.ArgumentParser, defaults, shown: str) -> None:
    """The training loop's options (feedforward/train.py's `fit`), shared by both kinds of network."""
    p.add_argument("--photos", required=True, help="folder of training photos, searched recursively")
    p.add_argument("--steps", type=_number("steps"), help=f"training steps (default {defaults.steps})")
    p.add_argument("--batch", type=_number("batch"), help=f"crops per step (default {defaults.batch})")
    p.add_argument("--crop", type=_number("crop"), help=f"side of the training crops in pixels (default {defaults.crop})")
    p.add_argument("--lr", type=_number("train_lr"), help=f"Adam learning rate (default {defaults.lr:g})")
    p.add_argument("--samples", nargs="*", help=f"photos to show {shown} in the sample strips (never trained on; "
                                                "default: the demo photo)")
    p.add_argument("--sample-every", type=_number("sample_every"), default=100, metavar="N", help="sample strip every N steps")
    p.add_argument("--checkpoint-every", type=_number("checkpoint_every"), default=50, metavar="N", help="checkpoint every N steps")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint beside the output")
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--seed", type=_number("seed"))
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def parser() -> argparse.ArgumentParser:
    from .feedforward.train import TrainSettings
    from .feedforward.wct import DecoderSettings

    p = argparse.ArgumentParser(prog="brushwork", description="Neural style transfer for photos and videos.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("stylize", help="repaint a photo in the style of one or more paintings")
    s.add_argument("content", help="the photo")
    _method_options(s, "instead of --style: a trained network's name or .safetensors file (one pass, under a "
                       "second; see `brushwork models list`)", fast=True)
    s.add_argument("-o", "--output", default="stylized.png", help="output image (default: %(default)s)")
    s.add_argument("--snapshot-every", type=_number("snapshot_every"), default=0, metavar="N",
                   help="also save every N iterations")
    s.add_argument("--mask", nargs="+", metavar="MASK",
                   help="one mask per --style: each style paints where its mask is white (grey: soft edges "
                        "and blends); resized to the photo")
    s.add_argument("--resume", action="store_true",
                   help="finish a print-size run that Ctrl-C stopped during its full-size iterations (same command, "
                        "same output)")
    s.add_argument("--keep-mask", metavar="MASK", help="hold the white part of this mask close to the photo "
                                                        "(a face, say): more content, no style there")
    _run_options(s)
    s.set_defaults(func=cmd_stylize)

    d = sub.add_parser("demo", help="stylise the built-in example photo with the built-in painting: first in "
                                    "one pass by the bundled network (OUTPUT-instant.png), then by the optimiser")
    d.add_argument("-o", "--output", default=DEMO_IMAGE_OUTPUT,
                   help="the optimiser's output image (default: %(default)s; the network's is written beside it "
                        "with -instant added to the name; with --audio brushwork-demo.wav)")
    d.add_argument("--audio", action="store_true",
                   help="stylise the built-in speech with the built-in humpback whale song instead")
    d.add_argument("--spectrogram", metavar="PNG", help="with --audio: also draw content | style | result")
    _run_options(d)
    d.set_defaults(func=cmd_demo, style_blend=None, snapshot_every=0, rate=None, mask=None, keep_mask=None,
                   resume=False)

    v = sub.add_parser("video", help="stylise every frame of a video without flicker (Ruder et al. 2016)")
    v.add_argument("input", help="a video file (MP4, WebM, GIF, ...) or a folder of frames")
    _method_options(v, "instead of --style: a trained network (real-time; see `models list`)", fast=True)
    v.add_argument("--temporal-blend", type=_number("temporal_blend"), metavar="A",
                   help="with --model or --fast: move each frame this share towards the previous output warped by "
                        "the flow, where the flow is reliable (0 = frame by frame; default 0.9)")
    v.add_argument("-o", "--output", default="stylized.mp4", help="output MP4 (default: %(default)s)")
    v.add_argument("--temporal-weight", type=_number("temporal_weight"), default=TEMPORAL_WEIGHT,
                   help="pull towards earlier frames warped by optical flow; 0 = independent frames "
                        "(default: %(default)s)")
    v.add_argument("--later-iterations", type=_number("later_iterations"), metavar="N",
                   help="iterations for frames after the first (default: half of --iterations)")
    v.add_argument("--flow", default=FLOW, choices=FLOW_METHODS, help=f"optical flow method (default {FLOW})")
    v.add_argument("--flow-size", type=_number("flow_size"), metavar="N", default=FLOW_SIZE,
                   help="longest side the optical flow is computed at (at most the input's), then scaled "
                        f"to --size (default: {FLOW_SIZE})")
    v.add_argument("--temporal-frames", type=_numbers("temporal_frames"), metavar="1,2,4", default=TEMPORAL_FRAMES,
                   help="earlier frames each frame is held to, each pixel to the most recent reliable one "
                        f"(default: {','.join(map(str, TEMPORAL_FRAMES))})")
    v.add_argument("--resume", action="store_true", help="continue an interrupted run, keeping finished frames")
    v.add_argument("--keep-frames", action="store_true", help="keep the stylised frames as PNGs")
    v.add_argument("--max-frames", type=_number("max_frames"), metavar="N", help="stop after N frames")
    v.add_argument("--fps", type=_number("fps"), help="frame rate for a folder of frames (default 25)")
    _run_options(v)
    v.set_defaults(func=cmd_video)

    b = sub.add_parser("batch", help="every photo of a folder times every painting (or a --model), resumable")
    b.add_argument("photos", nargs="+", help="photos, or folders of photos (the images directly inside)")
    _method_options(b, "instead of --style: a trained network's name or .safetensors file", fast=True)
    b.add_argument("-o", "--output", required=True, help="output folder (made if missing): the results, "
                   "manifest.json (what is done, for reruns) and index.html (a contact sheet)")
    b.add_argument("--workers", type=_number("workers"), metavar="N",
                   help="worker processes, each loading the network once, torch threads split between them "
                        "(default 1; with --ray, one actor per GPU of the cluster, else per CPU)")
    b.add_argument("--ray", nargs="?", const=True, metavar="ADDRESS",
                   help="run the workers as Ray actors: on a local Ray without ADDRESS, else on that cluster "
                        "(pip install 'brushwork[ray]')")
    b.add_argument("--retry-failed", action="store_true", help="redo the jobs an earlier run recorded as failed")
    _run_options(b)
    b.set_defaults(func=cmd_batch)

    t = sub.add_parser("train", help="train a network for a painting once, then stylise in one pass (--model)")
    t.add_argument("style", nargs="+", help="the painting (several: blended, see --style-blend)")
    t.add_argument("-o", "--output", help="model file (.safetensors); default: your model folder, named after "
                                          "the first style image")
    t.add_argument("--style-blend", type=_numbers("style_blend"), metavar="W1,W2", help="blend weights, one per style image")
    t.add_argument("--style-size", type=_number("style_size"), help="longest side of the painting for its targets; sets the "
                                                  "brush scale (default 256)")
    t.add_argument("--width", type=_number("width"), help="network width: 16 (default, half) or 32 (Johnson's)")
    t.add_argument("--skip", action=argparse.BooleanOptionalAction, help="add the network's output to the photo, "
                   "so the photo's content is kept from the first step (default: off, Johnson's plain network, "
                   "as the bundled models; with --skip the outputs keep the photo's colours)")
    t.add_argument("--content-weight", type=_number("content_weight"), help="weight of the content loss (default 4)")
    t.add_argument("--style-weight", type=_number("style_weight"), help="weight of the style loss (default 2)")
    t.add_argument("--tv-weight", type=_number("tv_weight"), help="weight of the total-variation loss (default 0)")
    _training_options(t, TrainSettings(), "stylised")
    t.set_defaults(func=cmd_train)

    td = sub.add_parser("train-decoders", help="train the arbitrary-style network's decoders (--fast) on photos only")
    td.add_argument("-o", "--output", required=True, help="decoder file (.safetensors)")
    td.add_argument("--width", type=_number("width"), help="channels of the first block's mirror: 32 (default, half "
                                                          "of VGG's) or 64")
    td.add_argument("--levels", type=_number("levels"), help="decoders for relu1_1 up to relu{levels}_1 (default 4)")
    td.add_argument("--feature-weight", type=_number("feature_weight"),
                    help="feature loss against the pixel loss (default 1)")
    td.add_argument("--fine-tune", metavar="DECODERS", help="start from these decoders (a file, or `bundled`) "
                                                           "instead of random weights")
    td.add_argument("--train-levels", type=_numbers("levels"), metavar="K,...",
                    help="train only these levels' decoders, e.g. 4 (default: all)")
    td.add_argument("--transfer", type=_number("transfer"), help="share of each batch whose features are first "
                    "whitened and coloured with another crop's, as stylising does (default 0)")
    _training_options(td, DecoderSettings(), "reconstructed by the deepest decoder")
    td.set_defaults(func=cmd_train_decoders)

    m = sub.add_parser("models", help="list the trained networks: bundled and your own")
    m.add_argument("action", choices=["list"])
    m.set_defaults(func=cmd_models)

    a = sub.add_parser("audio", help="a sound in the style of another sound (Ulyanov & Lebedev 2016)")
    a.add_argument("content", help="the sound to keep: WAV, FLAC, OGG (MP3 and others through ffmpeg)")
    a.add_argument("--style", "-s", required=True, help="the sound whose texture to take")
    a.add_argument("-o", "--output", default="stylized.wav", help="output .wav, .flac or .ogg (default: %(default)s)")
    a.add_argument("--preset", default="default", choices=["default", "ulyanov"],
                   help="recipe (default: %(default)s; 'ulyanov' is neural-style-audio's)")
    a.add_argument("--iterations", type=_number("iterations"), help="optimisation steps")
    a.add_argument("--content-weight", type=_number("content_weight"))
    a.add_argument("--style-weight", type=_number("style_weight"))
    a.add_argument("--rate", type=_number("rate"), metavar="HZ",
                   help="sample rate of the run and the output (default 22050)")
    a.add_argument("--spectrogram", metavar="PNG", help="also draw content | style | result spectrograms")
    a.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    a.add_argument("--seed", type=_number("seed"), help="make the run reproducible on this machine")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a.add_argument("--overwrite", action="store_true", help="allow the output to replace an input file")
    a.set_defaults(func=cmd_audio)

    u = sub.add_parser("ui", help="a web page for all of this, on this machine (needs the ui extra)")
    u.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine "
                                                       "only; 0.0.0.0 shares it with the network)")
    u.add_argument("--port", type=_number("port"), default=7860, help="(default: %(default)s)")
    u.add_argument("--open", action="store_true", help="open the page in a browser")
    u.add_argument("--jobs", type=_number("jobs"), default=1,
                   help="photos or videos painted at once; more wait in a queue (default: %(default)s)")
    u.add_argument("--max-upload-mb", type=_number("upload_mb"), default=25.0, metavar="MB")
    u.add_argument("--max-megapixels", type=_number("megapixels"), default=25.0, metavar="MP")
    u.add_argument("--max-video-seconds", type=_number("video_seconds"), default=10.0, metavar="S")
    u.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    u.set_defaults(func=cmd_ui)

    e = sub.add_parser("evaluate", help="content and style distances of a result (lower is closer)")
    e.add_argument("output", help="the stylised image, or sound (.wav, .flac, .ogg, .mp3, ...)")
    e.add_argument("--content", required=True)
    e.add_argument("--style", required=True)
    e.add_argument("--device", default="cpu")
    e.add_argument("--layers", action="store_true",
                   help="also each style layer's distance (style is their mean): which scales of texture are missed")
    e.set_defaults(func=cmd_evaluate)

    w = sub.add_parser("weights", help="list, download or locate network weights")
    w.add_argument("action", choices=["list", "fetch", "path"])
    w.add_argument("name", nargs="?", default="vgg16")
    w.set_defaults(func=cmd_weights)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # SIGTERM (a cluster's scheduler, `kill`) stops a run as Ctrl-C does, so it saves what it has
    previous = (signal.signal(signal.SIGTERM, raise_interrupt)
                if threading.current_thread() is threading.main_thread() else None)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (BrushworkError, ValueError, FileNotFoundError, FloatingPointError, RuntimeError, OSError) as exc:
        print(f"brushwork: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())

"""The `brushwork` command: parses arguments and calls the Python API, nothing more."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import images, presets
from .assets import DEMO_CONTENT, DEMO_STYLE

EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 2, 1, 130


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `stylize`, `demo` and `video`: the knobs of one run."""
    g = p.add_argument_group("run")
    g.add_argument("--preset", default="default", choices=sorted(presets.PRESETS),
                   help="recipe to start from (default: %(default)s; 'subtle' is the lighter pre-#17 look, "
                        "'seed' the livestream's)")
    g.add_argument("--size", type=int, help="longest side of the output in pixels")
    g.add_argument("--iterations", type=int, help="optimisation steps at full size")
    g.add_argument("--content-weight", type=float)
    g.add_argument("--style-weight", type=float)
    g.add_argument("--tv-weight", type=float, help="total-variation (denoise) weight")
    g.add_argument("--optimizer", choices=["lbfgs", "adam", "gd"])
    g.add_argument("--lr", type=float, help="Adam learning rate / GD step size, in 0-255 pixel units")
    g.add_argument("--history", type=int, metavar="N",
                   help="L-BFGS memory in steps (default 20; each costs two image-sized float32 buffers)")
    g.add_argument("--init", help="content, noise, style, or a path to an image")
    g.add_argument("--style-scale", type=float, help="style image size relative to the output")
    g.add_argument("--preserve-colors", choices=["luminance", "histogram"],
                   help="keep the photo's colours: luminance-only transfer or colour histogram matching")
    g.add_argument("--content-layers", type=lambda s: tuple(s.split(",")), metavar="L1,L2")
    g.add_argument("--style-layers", type=lambda s: tuple(s.split(",")), metavar="L1,L2")
    g.add_argument("--style-layer-weights", type=_floats, metavar="W1,W2")
    g.add_argument("--arch", choices=["vgg16", "vgg19"])
    g.add_argument("--pooling", choices=["max", "avg"])
    g.add_argument("--weights", help="network weights: a registry name or a .safetensors / Keras .h5 file")
    g.add_argument("--pyramid", type=_floats, metavar="F1,F2",
                   help="solve first at these fractions of the size (e.g. 0.25,0.5): more large-scale "
                        "style, less content; the default preset's own, '' for none")
    g.add_argument("--pyramid-iterations", type=_ints, metavar="N1,N2",
                   help="iterations at each pyramid level (default: half of --iterations each)")
    g.add_argument("--precision", choices=["auto", "float32", "bfloat16"])
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the network (default: on CUDA only)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    g.add_argument("--seed", type=int, help="make the run reproducible on this machine")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace) -> presets.Config:
    config = presets.get(args.preset)
    if args.pyramid is not None and args.pyramid_iterations is None:
        args.pyramid_iterations = ()  # --pyramid alone: the engine's per-level default, or off with ''
    return config.with_(
        size=args.size, iterations=args.iterations, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight, optimizer=args.optimizer, lr=args.lr,
        history=args.history, init=args.init, style_scale=args.style_scale,
        preserve_colors=args.preserve_colors,
        content_layers=args.content_layers, style_layers=args.style_layers,
        style_layer_weights=args.style_layer_weights, arch=args.arch, pooling=args.pooling,
        pyramid=args.pyramid, pyramid_iterations=args.pyramid_iterations, precision=args.precision,
        compile=args.compile)


def _progress(config: presets.Config, args: argparse.Namespace, output: Path):
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
        if config.print_every and step.adjustments and (i % config.print_every == 0 or step.iteration == step.total):
            a = step.adjustments
            msg = (f"Iteration: {i}\nWeight Adj. for Content: {a['content']:.2e}, "
                   f"Style: {a['style']:.2e}, Denoise: {a.get('tv', 0.0):.2e}")
            (bar.write if bar is not None else print)(msg)
        if every and step.iteration % every == 0:
            snap = output.with_name(f"{output.stem}.{step.iteration:05d}{output.suffix}")
            images.save(step.image, snap)

    return callback, bar


def _stylize(args: argparse.Namespace, content, styles) -> int:
    from .optimise import Stylizer

    config = _config(args)
    output = images.check_writable(args.output)
    stylizer = Stylizer(config, weights=args.weights, device=args.device)
    callback, bar = _progress(config, args, output)
    result = stylizer.run(content, styles, style_blend=args.style_blend, callback=callback, seed=args.seed)
    if bar is not None:
        bar.close()
    images.save(result.image, output)
    if result.interrupted:
        print(f"interrupted after {result.iterations} iterations; best image so far saved to {output}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(output.resolve())
    return 0


def cmd_stylize(args: argparse.Namespace) -> int:
    return _stylize(args, args.content, args.style)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.size is None:
        args.size = 256
    return _stylize(args, DEMO_CONTENT, [DEMO_STYLE])


def cmd_video(args: argparse.Namespace) -> int:
    from .video import stylize_video, work_folder

    try:
        result = stylize_video(
            args.input, args.style, args.output, config=_config(args), style_blend=args.style_blend,
            temporal_weight=args.temporal_weight, later_iterations=args.later_iterations,
            flow_method=args.flow, resume=args.resume, keep_frames=args.keep_frames,
            max_frames=args.max_frames, fps=args.fps, progress=not args.quiet, weights=args.weights,
            device=args.device, seed=args.seed)
    except KeyboardInterrupt:
        work = work_folder(args.output)
        kept = f"; finished frames are kept in {work}, rerun with --resume to continue" if work.exists() else ""
        print(f"interrupted{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(result.output)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import distances

    d = distances(args.output, args.content, args.style, device=args.device)
    print(f"content {d.content:.4f}\nstyle   {d.style:.4f}")
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="brushwork", description="Neural style transfer for photos and videos.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("stylize", help="repaint a photo in the style of one or more paintings")
    s.add_argument("content", help="the photo")
    s.add_argument("--style", "-s", nargs="+", required=True, help="one or more style images")
    s.add_argument("--style-blend", type=_floats, metavar="W1,W2", help="blend weights, one per style image")
    s.add_argument("-o", "--output", default="stylized.png", help="output image (default: %(default)s)")
    s.add_argument("--snapshot-every", type=int, default=0, metavar="N", help="also save every N iterations")
    _run_options(s)
    s.set_defaults(func=cmd_stylize)

    d = sub.add_parser("demo", help="stylise the built-in example photo with the built-in painting")
    d.add_argument("-o", "--output", default="brushwork-demo.png", help="output image (default: %(default)s)")
    _run_options(d)
    d.set_defaults(func=cmd_demo, style_blend=None, snapshot_every=0)

    v = sub.add_parser("video", help="stylise every frame of a video without flicker (Ruder et al. 2016)")
    v.add_argument("input", help="a video file (MP4, WebM, GIF, ...) or a folder of frames")
    v.add_argument("--style", "-s", nargs="+", required=True, help="one or more style images")
    v.add_argument("--style-blend", type=_floats, metavar="W1,W2", help="blend weights, one per style image")
    v.add_argument("-o", "--output", default="stylized.mp4", help="output MP4 (default: %(default)s)")
    v.add_argument("--temporal-weight", type=float, default=1.0,
                   help="pull towards the previous frame warped by optical flow; 0 = independent frames")
    v.add_argument("--later-iterations", type=int, metavar="N",
                   help="iterations for frames after the first (default: half of --iterations)")
    v.add_argument("--flow", default="dis", choices=["dis", "dis-fast", "farneback"], help="optical flow method")
    v.add_argument("--resume", action="store_true", help="continue an interrupted run, keeping finished frames")
    v.add_argument("--keep-frames", action="store_true", help="keep the stylised frames as PNGs")
    v.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    v.add_argument("--fps", type=float, help="frame rate for a folder of frames (default 25)")
    _run_options(v)
    v.set_defaults(func=cmd_video)

    e = sub.add_parser("evaluate", help="content and style distances of a result (lower is closer)")
    e.add_argument("output", help="the stylised image")
    e.add_argument("--content", required=True)
    e.add_argument("--style", required=True)
    e.add_argument("--device", default="cpu")
    e.set_defaults(func=cmd_evaluate)

    w = sub.add_parser("weights", help="list, download or locate network weights")
    w.add_argument("action", choices=["list", "fetch", "path"])
    w.add_argument("name", nargs="?", default="vgg16")
    w.set_defaults(func=cmd_weights)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (images.ImageError, ValueError, FileNotFoundError, FloatingPointError, RuntimeError, OSError) as exc:
        print(f"brushwork: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

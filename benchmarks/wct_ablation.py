"""Where the arbitrary-style network (`--fast`, WCT) loses the photo: each decoder alone, other chains of
levels, AdaIN's transform in place of whitening and colouring, and a closed-form relu1_1 decoder.

    python benchmarks/wct_ablation.py --sizes 256,512 --pairs all --photos photos/   # photos/: training photos
    python benchmarks/wct_ablation.py --sizes 512 --variants wct,chain4-2 --pairs all

Every variant runs the bundled decoders on the photo at `--size`; only the chain of (level, transform,
strength) steps differs. Content and Gram style are `brushwork evaluate`'s distances (lower is better).

- `recon{k}`: the relu{k}_1 decoder on the photo's own features (strength 0): how much of the photo that
  decoder alone loses, the floor under any picture made through it.
- `wct`: the shipped chain (relu4_1 -> relu1_1, strength 0.8); `chain4-2`: the same without the relu1_1 step.
- `adain4`, `adain4-2`, `adain4-1`: AdaIN (Huang & Belongie 2017: each channel's mean and deviation set to the
  painting's) instead of whitening and colouring, strength 1, over those levels.
- `wct3`: whitening and colouring at relu3_1 alone, strength 1 (no relu4_1 decoder, the floor above);
  `wct3-2`: then relu2_1 at 0.8; `wct4h-3`: relu4_1 at 0.5 first (thirteenth session).
- `swap3`: Chen & Schmidt 2016's style swap at relu3_1: each 3x3 patch of the photo's features replaced by the
  painting's patch it correlates with most (normalised), overlaps averaged, then decoded.
- `oracle`: the shipped chain with every decoder replaced by 100 L-BFGS iterations on the pixels, from the picture
  that level encoded, towards the transformed features (relative squared error): about the best any decoder
  could do, so what training decoders can still win. `oracle-1`: the same at strength 1; `oracle4`: only the
  relu4_1 decoder replaced (fourteenth session). All three need `--precision float32` (the inversion needs exact
  gradients) and are left out of the default variants (minutes per picture).
- `ridge1`: the shipped chain with its relu1_1 decoder (one 3x3 convolution) replaced by the least-squares
  inverse of relu1_1 fitted on the training photos (`--photos`, the judged photos left out; only with
  `--photos`): the best possible reconstruction, to tell whether that decoder's imperfection matters;
  `ridge-recon1`: that inverse alone on the photo's own features.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from quality import HELD_OUT, PAIRS, SHARED

from brushwork import evaluate, images
from brushwork.feedforward.data import find_photos
from brushwork.feedforward.infer import padded
from brushwork.feedforward.wct import WCTStylizer
from brushwork.losses import relative_sq_error
from brushwork.nets.decoder import FEATURE_SCALE, level_name
from brushwork.whitening import transform

Stats = dict[int, tuple[torch.Tensor, torch.Tensor]]  # level -> (mean, covariance ** 1/2 or deviation)
Chain = list[tuple[int, str, float]]  # (level, "wct", "adain" or "swap", strength), deepest first

CHAINS: dict[str, Chain] = {
    "recon4": [(4, "wct", 0.0)], "recon3": [(3, "wct", 0.0)], "recon2": [(2, "wct", 0.0)], "recon1": [(1, "wct", 0.0)],
    "wct": [(4, "wct", 0.8), (3, "wct", 0.8), (2, "wct", 0.8), (1, "wct", 0.8)],
    "chain4-2": [(4, "wct", 0.8), (3, "wct", 0.8), (2, "wct", 0.8)],
    "wct3": [(3, "wct", 1.0)], "wct3-2": [(3, "wct", 1.0), (2, "wct", 0.8)], "wct4h-3": [(4, "wct", 0.5), (3, "wct", 1.0)],
    "swap3": [(3, "swap", 1.0)],
    "adain4": [(4, "adain", 1.0)],
    "adain4-2": [(4, "adain", 1.0), (3, "adain", 1.0), (2, "adain", 1.0)],
    "adain4-1": [(4, "adain", 1.0), (3, "adain", 1.0), (2, "adain", 1.0), (1, "adain", 1.0)],
}
CHAINS["ridge1"], CHAINS["ridge-recon1"] = CHAINS["wct"], CHAINS["recon1"]
RIDGE = ("ridge1", "ridge-recon1")
CHAINS["oracle"], CHAINS["oracle4"] = CHAINS["wct"], CHAINS["wct"]
CHAINS["oracle-1"] = [(k, "wct", 1.0) for k in (4, 3, 2, 1)]
INVERTED = {"oracle": {1, 2, 3, 4}, "oracle4": {4}, "oracle-1": {1, 2, 3, 4}}  # levels an optimisation decodes
INVERSION_STEPS = 100
TAPS = 64 * 3 * 3 + 1  # relu1_1's 64 channels in a 3x3 window, and a bias


def adain(f: torch.Tensor, style: tuple[torch.Tensor, torch.Tensor], strength: float) -> torch.Tensor:
    """Huang & Belongie's transform: only each channel's mean and deviation become the painting's."""
    mean, std = f.mean((2, 3), keepdim=True), f.std((2, 3), keepdim=True) + 1e-5
    return strength * ((f - mean) / std * style[1] + style[0]) + (1 - strength) * f


def swap(f: torch.Tensor, style: torch.Tensor, strength: float, patch: int = 3) -> torch.Tensor:
    """Chen & Schmidt's style swap: every patch of `f` becomes the `style` patch most correlated with it. The
    correlations are one map per painting patch (about 1 GB at 512 px), so this is for the judged sizes only."""
    c, (h, w) = f.shape[1], f.shape[-2:]
    patches = F.unfold(style.float(), patch)[0].T  # (K, C * patch^2)
    filters = (patches / patches.norm(dim=1, keepdim=True).clamp_min(1e-5)).view(-1, c, patch, patch)
    pad = patch // 2
    best = F.conv2d(F.pad(f, (pad,) * 4, mode="reflect"), filters).argmax(1).flatten()
    chosen = patches[best].T[None]
    size = (h + 2 * pad, w + 2 * pad)
    out = F.fold(chosen, size, patch) / F.fold(torch.ones_like(chosen), size, patch)
    return strength * out[..., pad:pad + h, pad:pad + w] + (1 - strength) * f


def ridge_relu1(paint: WCTStylizer, photos: list[Path], size: int = 256) -> torch.nn.Module:
    """The relu1_1 decoder's convolution refitted by least squares (ridge 1e-3 of the mean energy)."""
    a, b = torch.zeros(TAPS, TAPS, dtype=torch.float64), torch.zeros(TAPS, 3, dtype=torch.float64)
    for path in photos:
        x = images.to_tensor(images.fit(images.load(path), size))
        with torch.no_grad():
            f = paint.perceptual.features(x, ["relu1_1"])["relu1_1"].float() / FEATURE_SCALE[1]
        u = F.unfold(F.pad(f, (1, 1, 1, 1), mode="reflect"), 3)[0].T.double()
        u = torch.cat([u, torch.ones(len(u), 1, dtype=torch.float64)], 1)
        a += u.T @ u
        b += u.T @ (x[0].reshape(3, -1).T / 255.0).double()
    a[:-1, :-1] += 1e-3 * a.diagonal()[:-1].mean() * torch.eye(TAPS - 1, dtype=torch.float64)
    solution = torch.linalg.solve(a, b)
    decoders = copy.deepcopy(paint.decoders)
    conv = decoders.decoders[0].body[0]
    conv.weight.data = solution[:-1].T.reshape(3, 64, 3, 3).to(conv.weight.dtype)
    conv.bias.data = solution[-1].to(conv.bias.dtype)
    return decoders


def invert(paint: WCTStylizer, layer: str, target: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """Pixels whose `layer` features come close to `target`, by L-BFGS from `start` (0-255, optimised in 0-1
    units, where the step sizes suit L-BFGS)."""
    y = (start / 255).clone().requires_grad_(True)
    lbfgs = torch.optim.LBFGS([y], max_iter=INVERSION_STEPS, history_size=20, line_search_fn="strong_wolfe",
                              tolerance_grad=0, tolerance_change=0)

    def closure() -> torch.Tensor:
        lbfgs.zero_grad()
        loss = relative_sq_error(paint.perceptual.features(y * 255, [layer])[layer], target)
        loss.backward()
        return loss

    with torch.enable_grad():
        lbfgs.step(closure)
    return (y.detach() * 255).clamp(0, 255)


def run(paint: WCTStylizer, decoders: torch.nn.Module, x: torch.Tensor, chain: Chain, wct_stats: Stats,
        adain_stats: Stats, style_features: dict[int, torch.Tensor], inverted: set[int] = frozenset()) -> torch.Tensor:
    """The picture after `chain`: at each step the last picture is encoded, transformed and decoded (or, at
    the `inverted` levels, inverted by optimisation)."""
    out = x
    for level, kind, strength in chain:
        layer = level_name(level)
        f = paint.perceptual.features(out, [layer])[layer].float()
        f = (transform(f, wct_stats[level], strength) if kind == "wct" else adain(f, adain_stats[level], strength)
             if kind == "adain" else swap(f, style_features[level], strength))
        out = (invert(paint, layer, f, out) if level in inverted
               else decoders(f.to(paint.dtype), level).float().clamp(0, 255))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256")
    p.add_argument("--pairs", default="all", help="shared, held-out or all")
    p.add_argument("--variants", default=",".join(v for v in CHAINS if v not in INVERTED),
                   help="comma-separated (default: all but the slow oracle variants)")
    p.add_argument("--photos", type=Path, help="training photos (scripts/gather_photos.py) for the ridge variants, "
                   "which are left out without them")
    p.add_argument("--decoders", type=Path, help="decoders to use (default: the bundled ones)")
    p.add_argument("--precision", default="auto", help="auto, float32 or bfloat16 (the oracle variants need float32)")
    p.add_argument("--save", type=Path, help="keep each picture as SAVE/<pair>_<variant>_<size>.png (for example as "
                   "the optimiser's --init)")
    args = p.parse_args()
    if set(args.variants.split(",")) & set(INVERTED) and args.precision != "float32":
        p.error("the oracle variants invert by L-BFGS, which needs exact gradients: add --precision float32")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    pairs = {"shared": PAIRS, "held-out": HELD_OUT, "all": {**PAIRS, **HELD_OUT}}[args.pairs]
    variants = [v for v in args.variants.split(",") if args.photos or v not in RIDGE]
    judged = {SHARED / content for content, _ in pairs.values()}
    ridge, paint = None, None
    print("| pair | size | " + " | ".join(variants) + " |\n|---|---|" + "---|" * len(variants))
    for name, (content, style) in pairs.items():
        # one set of networks; each pair costs its painting's statistics (as a batch's next painting does)
        paint = (paint.restyled([SHARED / style]) if paint else
                 WCTStylizer([SHARED / style], decoders=args.decoders, precision=args.precision))
        if ridge is None and set(RIDGE) & set(variants):
            ridge = ridge_relu1(paint, find_photos(args.photos, exclude=judged))
        for size in map(int, args.sizes.split(",")):
            photo = images.fit(images.load(SHARED / content), size)
            painting = images.to_tensor(images.fit(images.load(SHARED / style), size))
            with torch.no_grad():
                feats = paint.perceptual.features(painting, [level_name(k) for k in range(1, 5)])
            adain_stats = {k: (feats[level_name(k)].float().mean((2, 3), keepdim=True),
                               feats[level_name(k)].float().std((2, 3), keepdim=True)) for k in range(1, 5)}
            judge = evaluate.judge(SHARED / content, SHARED / style, photo.size)
            cells = []
            for v in variants:
                decoders = ridge if v in RIDGE else paint.decoders
                with torch.no_grad():
                    out = padded(images.to_tensor(photo), 2 ** (paint.decoders.config.levels - 1), lambda x: run(
                        paint, decoders, x, CHAINS[v], paint.style_statistics(size), adain_stats,
                        {k: feats[level_name(k)] for k in range(1, 5)}, INVERTED.get(v, set())))
                picture = images.to_image(out)
                if args.save:
                    images.save(picture, args.save / f"{name}_{v}_{size}.png")
                d = judge(picture)
                cells.append(f"{d.content:.3f} / {d.style:.3f}")
            print(f"| {name} | {size} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

"""The seed preset against the notebook's arithmetic, computed here by hand with plain tensor ops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from brushwork import Stylizer, presets
from brushwork.models import CONFIGS
from brushwork.weights import load_weights


def _caffe_features(x: torch.Tensor, sd: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Post-ReLU activations of all 13 VGG16 conv layers, written out without the package's model."""
    h = x.flip(1) - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    outs, idx = [], 0
    for item in CONFIGS["vgg16"][:-1]:  # no pool5: the last conv layer is all we need
        if item == "M":
            h = F.max_pool2d(h, 2)
            idx += 1
        else:
            h = F.relu(F.conv2d(h, sd[f"features.{idx}.weight"].float(), sd[f"features.{idx}.bias"].float(), padding=1))
            outs.append(h)
            idx += 2
    return outs


def _gram(f: torch.Tensor) -> torch.Tensor:
    m = f[0].reshape(f.shape[1], -1).T  # (pixels, channels), as the notebook reshapes
    return m.T @ m


def test_one_seed_step_matches_hand_computation(tmp_path) -> None:
    g = torch.Generator().manual_seed(0)
    content = (torch.rand(1, 3, 16, 16, generator=g) * 255).round()
    style = (torch.rand(1, 3, 16, 16, generator=g) * 255).round()
    x0 = torch.rand(1, 3, 16, 16, generator=g) + 128  # the notebook's uniform noise in [128, 129)
    to_pil = lambda t: Image.fromarray(t[0].permute(1, 2, 0).byte().numpy())  # noqa: E731
    config = presets.SEED.with_(iterations=3, style_size=16)
    steps = []
    Stylizer(config).run(to_pil(content), to_pil(style), init=x0, callback=steps.append)

    sd = load_weights().state_dict
    fc, fs = _caffe_features(content, sd), _caffe_features(style, sd)

    def hand_step(x: torch.Tensor, adj: list[float]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        xg = x.clone().requires_grad_(True)
        fx = _caffe_features(xg, sd)
        l_content = ((fx[4] - fc[4]) ** 2).mean()  # conv3_1 is the 5th conv layer
        l_style = torch.stack([((_gram(a) - _gram(b)) ** 2).mean() for a, b in zip(fx, fs)]).mean()
        l_denoise = (xg[:, :, 1:] - xg[:, :, :-1]).abs().sum() + (xg[..., 1:] - xg[..., :-1]).abs().sum()
        combined = 1.5 * adj[0] * l_content + 10 * adj[1] * l_style + 0.3 * adj[2] * l_denoise
        (grad,) = torch.autograd.grad(combined, xg)
        stepped = (x - grad * (10.0 / (grad.std(unbiased=False) + 1e-8))).clamp(0, 255)
        return stepped, [l_content, l_style, l_denoise]

    # step 0 uses the notebook's initial adjustment values (1e-10), step 1 those computed at step 0
    x1, losses0 = hand_step(x0, [1e-10] * 3)
    adj0 = [1.0 / (v.item() + 1e-10) for v in losses0]
    x2, _ = hand_step(x1, adj0)

    assert torch.allclose(steps[0].image, x0)
    for name, want in zip(("content", "style", "tv"), adj0):
        got = steps[0].adjustments[name]
        assert abs(got - want) / want < 1e-4, (name, got, want)
    for name, want in zip(("content", "style", "tv"), losses0):
        assert abs(steps[0].losses[name] - want.item()) / want.item() < 1e-4
    assert torch.allclose(steps[1].image, x1, atol=1e-3)
    assert torch.allclose(steps[2].image, x2, atol=1e-2)
    assert (steps[1].image - x0).abs().max() > 1  # it really moved


def test_seed_combined_loss_falls(content_path, style_path) -> None:
    config = presets.SEED.with_(size=64, iterations=12, style_size=64)
    result = Stylizer(config).run(content_path, style_path, seed=0)
    hist = result.history
    combined = [h["loss"] for h in hist]
    assert combined[1] < combined[0]
    assert all(c < combined[0] for c in combined[1:])
    assert hist[-1]["content"] < hist[0]["content"] and hist[-1]["style"] < hist[0]["style"]

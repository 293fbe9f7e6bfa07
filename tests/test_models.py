from __future__ import annotations

import pytest
import torch

from brushwork.models import (_PACKED, VGGFeatures, _onednn_bfloat16, conv_layers, deepest, frozen_conv,
                              layer_names)
from brushwork.weights import load_weights


@pytest.mark.parametrize("arch, convs, last", [("vgg16", 13, "pool5"), ("vgg19", 16, "pool5")])
def test_layer_names(arch: str, convs: int, last: str) -> None:
    names = layer_names(arch)
    assert len(conv_layers(arch)) == convs
    assert names[0] == "conv1_1" and names[1] == "relu1_1" and names[-1] == last


def test_cut_at_deepest_layer() -> None:
    net = VGGFeatures("vgg16", last_layer=deepest("vgg16", ["relu1_1", "relu4_2", "relu2_1"]))
    assert net.names[-1] == "relu4_2"
    assert len(net.features) == layer_names("vgg16").index("relu4_2") + 1


def test_forward_returns_requested_layers_with_expected_shapes() -> None:
    net = VGGFeatures("vgg16", last_layer="relu3_1")
    out = net(torch.zeros(1, 3, 32, 48), ["relu1_1", "relu3_1"])
    assert set(out) == {"relu1_1", "relu3_1"}
    assert out["relu1_1"].shape == (1, 64, 32, 48)
    assert out["relu3_1"].shape == (1, 256, 8, 12)


def test_asking_for_a_layer_past_the_cut_is_an_error() -> None:
    net = VGGFeatures("vgg16", last_layer="relu2_1")
    with pytest.raises(ValueError, match="relu4_2"):
        net(torch.zeros(1, 3, 16, 16), ["relu4_2"])


@pytest.mark.parametrize("pooling, cls", [("max", torch.nn.MaxPool2d), ("avg", torch.nn.AvgPool2d)])
def test_pooling_option(pooling: str, cls: type) -> None:
    net = VGGFeatures("vgg16", pooling=pooling, last_layer="pool1")
    assert isinstance(net.features[-1], cls)


def test_real_weights_load_and_wrong_shapes_are_refused() -> None:
    w = load_weights()
    net = VGGFeatures("vgg16", last_layer="relu5_3")
    net.load_weights(w.state_dict)
    assert net.features[0].weight.dtype == torch.float32
    assert torch.equal(net.features[0].weight, w.state_dict["features.0.weight"].float())
    bad = dict(w.state_dict)
    bad["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    with pytest.raises(ValueError, match=r"features\.2\.weight has shape"):
        VGGFeatures("vgg16").load_weights(bad)


def test_unknown_arch_and_pooling_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown network"):
        VGGFeatures("resnet50")
    with pytest.raises(ValueError, match="pooling"):
        VGGFeatures("vgg16", pooling="median")


PACKS = _onednn_bfloat16()  # where the engine packs bfloat16 convolutions (models._packs)
needs_packing = pytest.mark.skipif(not PACKS, reason="needs oneDNN with bfloat16")


def _conv(dtype: torch.dtype, cin: int = 8, cout: int = 16) -> torch.nn.Conv2d:
    torch.manual_seed(0)
    return torch.nn.Conv2d(cin, cout, 3, padding=1).requires_grad_(False).to(dtype)


@needs_packing
@pytest.mark.parametrize("shape", [(1, 8, 37, 53), (2, 8, 4, 4), (1, 8, 64, 48)])
def test_packed_convolution_gives_the_plain_ones_bits(shape: tuple[int, ...]) -> None:
    """The loss network's packed bfloat16 weights give the plain convolution's output and input gradient."""
    conv = _conv(torch.bfloat16)
    x = (torch.randn(shape) * 10).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    grad = torch.randn(shape[0], 16, *shape[2:]).to(torch.bfloat16)
    ours = frozen_conv(conv, x)
    assert conv.weight in _PACKED  # the packed path ran
    ours.backward(grad)
    our_grad, x.grad = x.grad.clone(), None
    plain = conv(x)
    plain.backward(grad)
    assert torch.equal(ours, plain) and torch.equal(our_grad, x.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_features_and_gradient_equal_the_layers_run_one_by_one(dtype: torch.dtype,
                                                                layout: torch.memory_format) -> None:
    """Packed (bfloat16, VGG's 3-512 channels) or not, every layer's output and the input's gradient are what
    the modules give."""
    torch.manual_seed(0)
    net = VGGFeatures("vgg16", last_layer="relu4_1").requires_grad_(False).to(dtype)
    x = (torch.rand(2, 3, 20, 28) * 255).to(dtype).contiguous(memory_format=layout).requires_grad_(True)
    wanted = ["conv1_2", "relu1_2", "relu2_1", "relu4_1"]
    got = net(x, wanted)
    sum(got[k].float().sum() for k in wanted).backward()
    our_grad, x.grad = x.grad.clone(), None
    expected, h = {}, x
    for name, module in zip(net.names, net.features):
        h = module(h)
        expected[name] = h
    sum(expected[k].float().sum() for k in wanted).backward()
    for name in wanted:
        assert torch.equal(got[name], expected[name]), name
    assert torch.equal(our_grad, x.grad)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert all((m.weight in _PACKED) == (PACKS and dtype == torch.bfloat16) for m in convs)


def test_float32_convolutions_are_not_packed() -> None:
    conv = _conv(torch.float32)
    frozen_conv(conv, torch.randn(1, 8, 16, 16))
    assert conv.weight not in _PACKED


@needs_packing
def test_packed_weights_follow_weights_changed_in_place() -> None:
    conv = _conv(torch.bfloat16)
    x = torch.randn(1, 8, 16, 16).to(torch.bfloat16)
    before = frozen_conv(conv, x)
    with torch.no_grad():
        conv.weight.mul_(2)  # as load_weights' copy_ does
    after = frozen_conv(conv, x)
    torch.testing.assert_close(after, conv(x))
    assert not torch.allclose(after, before)


@pytest.mark.parametrize("trained", ["weight", "bias"])
def test_a_trained_convolution_is_not_packed_and_gets_its_gradients(trained: str) -> None:
    conv = _conv(torch.bfloat16)
    getattr(conv, trained).requires_grad_(True)
    frozen_conv(conv, torch.randn(1, 8, 16, 16).to(torch.bfloat16)).float().sum().backward()
    grad = getattr(conv, trained).grad
    assert conv.weight not in _PACKED and grad is not None and grad.abs().sum() > 0


@needs_packing
def test_nothing_is_packed_with_onednn_switched_off() -> None:
    conv = _conv(torch.bfloat16)
    with torch.backends.mkldnn.flags(enabled=False):
        frozen_conv(conv, torch.randn(1, 8, 16, 16).to(torch.bfloat16))
    assert conv.weight not in _PACKED


@needs_packing
def test_packed_weights_follow_weights_swapped_through_data() -> None:
    conv = _conv(torch.bfloat16)
    x = torch.randn(1, 8, 16, 16).to(torch.bfloat16)
    frozen_conv(conv, x)
    conv.weight.data = conv.weight.data * 2  # as Module._apply does: no version bump
    torch.testing.assert_close(frozen_conv(conv, x), conv(x), atol=0.0, rtol=0.0)


@needs_packing
@pytest.mark.parametrize("case", ["reflect padding", "unbatched", "autocast", "inference weights"])
def test_what_packing_would_change_runs_plain(case: str) -> None:
    """Reflect padding, an unbatched image, autocast and weights made in inference mode go through `conv(x)`."""
    if case == "inference weights":
        with torch.inference_mode():
            conv = _conv(torch.bfloat16)
    else:
        conv = _conv(torch.bfloat16)
    if case == "reflect padding":
        conv.padding_mode = "reflect"
    x = torch.randn(*(() if case == "unbatched" else (1,)), 8, 12, 12).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=case == "autocast"):
        assert torch.equal(frozen_conv(conv, x), conv(x))
    assert conv.weight not in _PACKED


@needs_packing
def test_the_packed_gradient_refuses_a_second_derivative() -> None:
    conv = _conv(torch.bfloat16)
    x = torch.randn(1, 8, 12, 12).to(torch.bfloat16).requires_grad_(True)
    (grad,) = torch.autograd.grad(frozen_conv(conv, x).float().pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        grad.float().sum().backward()

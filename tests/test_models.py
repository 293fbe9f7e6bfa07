from __future__ import annotations

import pytest
import torch

from brushwork.models import VGGFeatures, conv_layers, deepest, layer_names
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

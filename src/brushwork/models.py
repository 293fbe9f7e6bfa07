"""VGG feature extractors with named layers, cut after the deepest layer a run needs."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.utils.weak import WeakIdKeyDictionary

# Channel counts per conv layer; "M" is a pooling layer. Same order as torchvision, so the
# state-dict keys (features.N.weight) line up with torchvision's and with our weight files.
CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def layer_names(arch: str) -> list[str]:
    """Names of every module in `features`, in order: conv1_1, relu1_1, ..., pool5."""
    names, block, idx = [], 1, 1
    for item in CONFIGS[arch]:
        if item == "M":
            names.append(f"pool{block}")
            block, idx = block + 1, 1
        else:
            names += [f"conv{block}_{idx}", f"relu{block}_{idx}"]
            idx += 1
    return names


def layer_geometry(arch: str) -> dict[str, tuple[int, int]]:
    """Each layer's (channels, stride in input pixels): how large its feature map is per input pixel."""
    geometry, channels, stride, items = {}, 3, 1, iter(CONFIGS[arch])
    item: int | str = 0
    for name in layer_names(arch):
        if not name.startswith("relu"):  # a relu follows its conv and keeps its item
            item = next(items)
        if item == "M":
            stride *= 2
        else:
            channels = int(item)
        geometry[name] = (channels, stride)
    return geometry


def conv_layers(arch: str) -> list[str]:
    return [n for n in layer_names(arch) if n.startswith("conv")]


_ONE = [1, 1]  # stride, padding and dilation of every VGG convolution (3x3)
_PACKED: WeakIdKeyDictionary = WeakIdKeyDictionary()  # frozen weight -> ((version, address), packed, for the backward)


def _pointwise(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._convolution_pointwise(x.contiguous(memory_format=torch.channels_last), packed, bias,
                                                   _ONE, _ONE, _ONE, 1, "none", [], "")


class _PackedConv(torch.autograd.Function):
    """A frozen 3x3 convolution whose input gradient is the forward convolution of the output gradient with
    the flipped, transposed kernel, so both directions run oneDNN's forward kernel on weights packed once."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None,
                packed_back: torch.Tensor) -> torch.Tensor:
        ctx.packed_back = packed_back
        return _pointwise(x, packed, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        return _pointwise(grad, ctx.packed_back, None), None, None, None


@functools.cache
def _onednn_bfloat16() -> bool:
    """Whether this build and CPU run oneDNN in bfloat16 (asked once: the hardware does not change)."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _packs(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether `conv(x)` runs on packed weights: a frozen bfloat16 VGG convolution of a batch on a CPU whose
    oneDNN is on and runs bfloat16, outside torch.compile (which fuses on its own) and autocast (which would
    not cast them). Float32 is not packed: its sums would come in another order and change the pictures
    (benchmarks/results/packed-conv.md)."""
    w, b = conv.weight, conv.bias
    return (x.device.type == "cpu" and x.dim() == 4 and w.dtype == torch.bfloat16 and x.dtype == w.dtype
            and not w.requires_grad and (b is None or not b.requires_grad) and not w.is_inference()
            and torch.backends.mkldnn.enabled and _onednn_bfloat16()
            and conv.groups == 1 and conv.kernel_size == (3, 3) and conv.padding_mode == "zeros"
            and list(conv.stride) == _ONE and list(conv.padding) == _ONE and list(conv.dilation) == _ONE
            and not torch.compiler.is_compiling() and not torch.is_autocast_enabled("cpu"))


def frozen_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """`conv(x)` with the loss network's weights packed once into oneDNN's own layout.

    PyTorch re-packs a convolution's weights on every call, forward and backward: at the pyramid's small
    levels that was most of an iteration (benchmarks/packed_conv.py). Anything else (float32, a GPU, a weight
    being trained) is `conv(x)`."""
    if not _packs(conv, x):
        return conv(x)
    w = conv.weight
    key = (w._version, w.data_ptr())  # new weights, changed in place (load_weights) or swapped (.data =)
    found = _PACKED.get(w)
    if found is None or found[0] != key:
        kernel = w.detach()
        back = kernel.flip(2, 3).transpose(0, 1).contiguous(memory_format=torch.channels_last)
        found = (key, *(torch.ops.mkldnn._reorder_convolution_weight(k, _ONE, _ONE, _ONE, 1, None)
                        for k in (kernel.contiguous(memory_format=torch.channels_last), back)))
        _PACKED[w] = found
    bias = None if conv.bias is None else conv.bias.detach()
    if not x.requires_grad:
        return _pointwise(x, found[1], bias)
    return _PackedConv.apply(x, found[1], bias, found[2])


class VGGFeatures(nn.Module):
    """The conv stack of a VGG network; `forward` returns the activations of the layers asked for.

    Only the modules up to the deepest requested layer are kept, so a run that stops at relu4_2 never
    pays for conv4_3 and block 5.
    """

    def __init__(self, arch: str = "vgg16", pooling: str = "max",
                 last_layer: str | None = None) -> None:
        super().__init__()
        if arch not in CONFIGS:
            raise ValueError(f"unknown network {arch!r}; choose one of {sorted(CONFIGS)}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        self.arch, self.pooling = arch, pooling
        all_names = layer_names(arch)
        if last_layer is not None and last_layer not in all_names:
            raise ValueError(f"{arch} has no layer {last_layer!r}; its layers are {', '.join(all_names)}")
        keep = len(all_names) if last_layer is None else all_names.index(last_layer) + 1
        modules: list[nn.Module] = []
        in_ch = 3
        for item in CONFIGS[arch]:
            if item == "M":
                modules.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
            else:
                modules += [nn.Conv2d(in_ch, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = int(item)
        self.names = all_names[:keep]
        self.features = nn.Sequential(*modules[:keep])

    def load_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load `features.N.*` tensors, ignoring layers past the cut; upcasts float16 files."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        if missing:
            raise ValueError(f"weights lack {len(missing)} tensors this {self.arch} needs, e.g. {missing[0]}")
        for key, param in own.items():
            value = state_dict[key]
            if tuple(value.shape) != tuple(param.shape):
                raise ValueError(
                    f"weight {key} has shape {tuple(value.shape)} but {self.arch} needs {tuple(param.shape)};"
                    " is this a different network's file?")
            param.copy_(value.to(param.dtype))

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        unknown = wanted - set(self.names)
        if unknown:
            raise ValueError(f"layers {sorted(unknown)} are not in this network (cut at {self.names[-1]})")
        out: dict[str, torch.Tensor] = {}
        # Layers may differ in precision (the engine keeps the first convolution in float32): each
        # convolution reads in its own weights' precision and hands on in the precision of the last one.
        hand_on = [m for m in self.features if isinstance(m, nn.Conv2d)][-1].weight.dtype
        for name, module in zip(self.names, self.features):
            if isinstance(module, nn.Conv2d):
                x = frozen_conv(module, x.to(module.weight.dtype)).to(hand_on)
            else:
                x = module(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out


def deepest(arch: str, layers: Iterable[str]) -> str:
    """The deepest of `layers` in `arch`'s order: where the network can be cut."""
    order = layer_names(arch)
    layers = list(layers)
    for name in layers:
        if name not in order:
            raise ValueError(f"{arch} has no layer {name!r}; its layers are {', '.join(order)}")
    return max(layers, key=order.index)

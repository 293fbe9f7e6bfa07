"""The weights registry: download, hash check, h5 -> safetensors conversion, cache, errors, loading.

A fake VGG16 (real shapes, seeded random float16 values) is served from a local HTTP server, so nothing
here touches the internet.
"""

from __future__ import annotations

import functools
import hashlib
import socket
import threading
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from brushwork import weights as W
from brushwork.models import CONFIGS, VGGFeatures

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FAKE_NAME = "fake16"
FAKE_FILE = "fake16_notop.h5"


# --- fixtures ---------------------------------------------------------------------------------------


def keras_arrays(arch: str, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Keras layer name -> (HWIO kernel, bias), full VGG shapes, deterministic float16 values."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for layer, _, (out_ch, in_ch, kh, kw) in W.conv_layout(arch):
        kernel = rng.standard_normal((kh, kw, in_ch, out_ch), dtype=np.float32).astype(np.float16)
        arrays[layer] = (kernel, rng.standard_normal(out_ch, dtype=np.float32).astype(np.float16))
    return arrays


def write_keras_h5(path: Path, arrays: dict, layout: str = "keras2") -> Path:
    """Write `arrays` the way Keras 1/2 (`block1_conv1/block1_conv1_W_1:0`), Keras 2 nested or Keras 3 do."""
    with h5py.File(path, "w") as f:
        for layer, (kernel, bias) in arrays.items():
            if layout == "keras2":
                group = f.create_group(layer)
                names = (f"{layer}_W_1:0", f"{layer}_b_1:0")
            elif layout == "nested":
                group = f.create_group(f"{layer}/{layer}")
                names = ("kernel:0", "bias:0")
            else:  # keras3
                group = f.create_group(f"layers/{layer}/vars")
                names = ("0", "1")
            group.create_dataset(names[0], data=kernel)
            group.create_dataset(names[1], data=bias)
    return path


@pytest.fixture(scope="module")
def vgg16_arrays():
    return keras_arrays("vgg16")


@pytest.fixture(scope="module")
def served(tmp_path_factory, vgg16_arrays):
    """A local HTTP server with the fake h5 at /fake16_notop.h5; `requests` records every path asked for."""
    root = tmp_path_factory.mktemp("server")
    h5 = write_keras_h5(root / FAKE_FILE, vgg16_arrays)
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    md5 = hashlib.md5(h5.read_bytes()).hexdigest()
    yield {"base": base, "root": root, "h5": h5, "md5": md5, "requests": requests}
    server.shutdown()
    server.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache directory that fetch() uses; the environment is cleared of our variables."""
    for var in (W.ENV_WEIGHTS, W.ENV_MIRROR, "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "cache"
    monkeypatch.setenv(W.ENV_CACHE, str(path))
    return path


@pytest.fixture
def fake_spec(served, monkeypatch) -> W.WeightSpec:
    """A registry entry for the served fake VGG16."""
    spec = W.WeightSpec(name=FAKE_NAME, arch="vgg16", url=f"{served['base']}/{FAKE_FILE}",
                        hash=f"md5:{served['md5']}", size=served["h5"].stat().st_size,
                        filename=FAKE_FILE, licence="test")
    monkeypatch.setitem(W.REGISTRY, FAKE_NAME, spec)
    served["requests"].clear()
    return spec


def dead_url() -> str:
    """A URL on a local port nobody listens on: the connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{FAKE_FILE}"


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# --- registry and cache directory ---------------------------------------------------------------------


def test_registry_matches_keras():
    """URLs, md5s and sizes as in keras/src/applications/vgg16.py, vgg19.py and Keras' download logs."""
    assert W.REGISTRY["vgg16"].url == ("https://storage.googleapis.com/tensorflow/keras-applications/"
                                       "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert W.REGISTRY["vgg16"].hash == "md5:6d6bbae143d832006294945121d1f1fc"
    assert W.REGISTRY["vgg19"].url == ("https://storage.googleapis.com/tensorflow/keras-applications/"
                                       "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert W.REGISTRY["vgg19"].hash == "md5:253f8cb515780f3b799900260a226db6"
    assert (W.REGISTRY["vgg16"].size, W.REGISTRY["vgg19"].size) == (58_889_256, 80_134_624)
    for name, spec in W.REGISTRY.items():
        assert spec.name == name and spec.url.endswith("/" + spec.filename)
        assert spec.preprocessing == W.CAFFE


@pytest.mark.parametrize("arch, indices", [
    ("vgg16", [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]),
    ("vgg19", [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]),
])
def test_layout_matches_the_model(arch, indices):
    """weights.py keeps its own layer table; it must agree with models.py's network."""
    assert [index for _, index, _ in W.conv_layout(arch)] == indices
    model_shapes = {k: tuple(v.shape) for k, v in VGGFeatures(arch).state_dict().items()}
    assert W.expected_shapes(arch) == model_shapes
    assert len(W.conv_layout(arch)) == sum(1 for c in CONFIGS[arch] if c != "M")


@pytest.mark.parametrize("env, expected", [
    ({"BRUSHWORK_CACHE": "{tmp}/mine", "XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/mine"),
    ({"XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/xdg/brushwork"),
    ({}, "{tmp}/home/.cache/brushwork"),
])
def test_cache_dir_rules(env, expected, tmp_path, monkeypatch):
    monkeypatch.delenv(W.ENV_CACHE, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(tmp=tmp_path))
    assert W.cache_dir() == Path(expected.format(tmp=tmp_path))
    assert not W.cache_dir().exists()  # asking does not create it


def test_unknown_name_lists_the_known_ones(cache):
    with pytest.raises(W.WeightsError, match="vgg16, vgg19"):
        W.fetch("vgg99")


def test_list_weights_and_weights_path(cache):
    rows = {name: (arch, status, size) for name, arch, status, size in W.list_weights()}
    assert rows["vgg16"] == ("vgg16", "bundled", 58_889_256)
    assert rows["vgg19"] == ("vgg19", "not downloaded", 80_134_624)
    assert W.weights_path("vgg16") == W.BUNDLED
    assert W.weights_path("vgg19") == cache / "vgg19.safetensors"
    cache.mkdir()
    (cache / "vgg19.safetensors").write_bytes(b"")
    rows = {name: status for name, _, status, _ in W.list_weights()}
    assert rows["vgg19"] == "cached"


def test_fetch_of_bundled_never_downloads(cache, monkeypatch):
    monkeypatch.setattr(W.urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download expected"))
    assert W.fetch("vgg16") == W.BUNDLED
    assert not cache.exists()


# --- fetch --------------------------------------------------------------------------------------------


def test_fetch_downloads_verifies_and_converts(cache, fake_spec, served, vgg16_arrays, capsys):
    path = W.fetch(FAKE_NAME, progress=True)

    assert path == cache / f"{FAKE_NAME}.safetensors" == W.weights_path(FAKE_NAME)
    assert leftovers(cache) == [path.name]  # no .part files, no kept h5
    assert served["requests"] == [f"/{FAKE_FILE}"]
    assert "fake16" in capsys.readouterr().err  # the tqdm bar, labelled with the name

    tensors = load_file(path)
    assert {k: tuple(v.shape) for k, v in tensors.items()} == W.expected_shapes("vgg16")
    assert all(v.dtype == torch.float32 for v in tensors.values())
    # HWIO -> OIHW: Keras kernel[h, w, i, o] lands at weight[o, i, h, w] (block2_conv1 is features.5).
    kernel, bias = vgg16_arrays["block2_conv1"]
    h, w, i, o = 1, 2, 5, 7
    assert tensors["features.5.weight"][o, i, h, w].item() == float(kernel[h, w, i, o])
    assert torch.equal(tensors["features.5.weight"], torch.from_numpy(kernel.astype(np.float32)).permute(3, 2, 0, 1))
    assert torch.equal(tensors["features.5.bias"], torch.from_numpy(bias.astype(np.float32)))
    assert torch.equal(tensors["features.28.bias"], torch.from_numpy(vgg16_arrays["block5_conv3"][1].astype(np.float32)))


def test_second_fetch_reuses_the_cache(cache, fake_spec, served):
    first = W.fetch(FAKE_NAME, progress=False)
    second = W.fetch(FAKE_NAME, progress=False)
    assert first == second
    assert len(served["requests"]) == 1


def test_mirror_env_replaces_the_host(cache, fake_spec, served, monkeypatch):
    monkeypatch.setitem(W.REGISTRY, FAKE_NAME, replace(fake_spec, url="https://unreachable.invalid/x/" + FAKE_FILE))
    monkeypatch.setenv(W.ENV_MIRROR, served["base"] + "/")
    assert W.download_url(W.REGISTRY[FAKE_NAME]) == f"{served['base']}/{FAKE_FILE}"
    assert W.fetch(FAKE_NAME, progress=False).exists()
    assert served["requests"] == [f"/{FAKE_FILE}"]


def test_mirror_can_be_a_local_folder(cache, fake_spec, served, monkeypatch):
    monkeypatch.setenv(W.ENV_MIRROR, served["root"].as_uri())
    assert W.fetch(FAKE_NAME, progress=False).exists()
    assert served["requests"] == []


def test_checksum_mismatch_deletes_the_download(cache, fake_spec, served, monkeypatch):
    monkeypatch.setitem(W.REGISTRY, FAKE_NAME, replace(fake_spec, hash="md5:" + "0" * 32))
    with pytest.raises(W.WeightsError) as info:
        W.fetch(FAKE_NAME, progress=False)
    message = str(info.value)
    assert "0" * 32 in message and served["md5"] in message  # expected and got
    assert "deleted" in message and "--weights" in message
    assert leftovers(cache) == []


@pytest.mark.parametrize("where", ["refused", "404"])
def test_unreachable_says_what_to_download_and_where_to_put_it(cache, fake_spec, served, where):
    url = dead_url() if where == "refused" else f"{served['base']}/missing.h5"
    with pytest.raises(W.WeightsError) as info:
        W.fetch(FAKE_NAME, progress=False, url=url)
    message = str(info.value)
    assert url in message
    assert str(cache / FAKE_FILE) in message and "--weights" in message
    assert leftovers(cache) == []
    if where == "404":
        assert "404" in message


def test_hand_placed_download_is_used_offline(cache, fake_spec, served):
    cache.mkdir()
    (cache / FAKE_FILE).write_bytes(served["h5"].read_bytes())
    path = W.fetch(FAKE_NAME, progress=False, url=dead_url())
    assert path.exists() and served["requests"] == []
    assert (cache / FAKE_FILE).exists()  # the user's file is left alone


def test_hand_placed_file_with_wrong_hash_is_reported(cache, fake_spec):
    cache.mkdir()
    (cache / FAKE_FILE).write_bytes(b"not the weights")
    with pytest.raises(W.WeightsError, match=f"{FAKE_FILE} has md5"):
        W.fetch(FAKE_NAME, progress=False)


def test_download_of_a_non_vgg_leaves_nothing(cache, fake_spec, served, monkeypatch):
    bogus = served["root"] / "bogus.h5"
    with h5py.File(bogus, "w") as f:
        f.create_dataset("dense_1/kernel:0", data=np.zeros((4, 4), np.float32))
    monkeypatch.setitem(W.REGISTRY, FAKE_NAME, replace(
        fake_spec, url=f"{served['base']}/bogus.h5", hash="md5:" + hashlib.md5(bogus.read_bytes()).hexdigest()))
    with pytest.raises(W.WeightsError, match="no VGG conv layers"):
        W.fetch(FAKE_NAME, progress=False)
    assert leftovers(cache) == []


# --- reading and loading ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["keras2", "nested", "keras3"])
def test_h5_layouts_read_the_same(layout, tmp_path, vgg16_arrays):
    arch, tensors = W.read_keras_h5(write_keras_h5(tmp_path / "w.h5", vgg16_arrays, layout))
    kernel, _ = vgg16_arrays["block1_conv2"]
    assert arch == "vgg16"
    assert torch.equal(tensors["features.2.weight"], torch.from_numpy(kernel.astype(np.float32)).permute(3, 2, 0, 1))


def test_load_weights_of_an_h5_path_converts_in_memory(cache, tmp_path, vgg16_arrays):
    h5 = write_keras_h5(tmp_path / "keras.weights", vgg16_arrays)  # found by content, not suffix
    loaded = W.load_weights(h5)
    assert loaded.arch == "vgg16" and loaded.source == str(h5) and loaded.preprocessing == W.CAFFE
    assert torch.equal(loaded.state_dict["features.0.bias"],
                       torch.from_numpy(vgg16_arrays["block1_conv1"][1].astype(np.float32)))
    assert leftovers(cache) == []
    VGGFeatures("vgg16").load_weights(loaded.state_dict)


def test_load_weights_detects_vgg19(cache, tmp_path):
    path = tmp_path / "v19.safetensors"
    save_file({k: torch.zeros(s, dtype=torch.float16) for k, s in W.expected_shapes("vgg19").items()}, path)
    loaded = W.load_weights(str(path))
    assert loaded.arch == "vgg19" and "features.34.weight" in loaded.state_dict
    assert all(v.dtype == torch.float32 for v in loaded.state_dict.values())


def test_load_weights_by_name_fetches(cache, fake_spec, served):
    loaded = W.load_weights(FAKE_NAME)
    assert loaded.arch == "vgg16" and loaded.source == str(cache / f"{FAKE_NAME}.safetensors")
    assert len(served["requests"]) == 1


def test_bundled_weights_are_the_shared_vgg16(cache):
    shared = SHARED / "weights" / "vgg16-caffe.safetensors"
    if not shared.exists():
        pytest.skip(f"{shared} not present")
    reference = load_file(shared)
    for source in (None, "vgg16", W.BUNDLED):
        loaded = W.load_weights(source)
        assert loaded.arch == "vgg16" and loaded.preprocessing == W.CAFFE
        assert loaded.state_dict.keys() == reference.keys()
        for key, value in loaded.state_dict.items():
            assert value.dtype == torch.float32
            assert torch.equal(value, reference[key].float())


def test_env_weights_is_the_default(cache, tmp_path, monkeypatch, vgg16_arrays):
    h5 = write_keras_h5(tmp_path / "env.h5", vgg16_arrays)
    monkeypatch.setenv(W.ENV_WEIGHTS, str(h5))
    assert W.load_weights().source == str(h5)
    assert W.load_weights("vgg16").source == str(W.BUNDLED)  # an explicit choice still wins


def _wrong_shape(path: Path) -> None:
    shapes = W.expected_shapes("vgg16") | {"features.0.weight": (64, 3, 5, 5)}
    save_file({k: torch.zeros(s, dtype=torch.float16) for k, s in shapes.items()}, path)


def _missing_layer(path: Path) -> None:
    save_file({k: torch.zeros(s, dtype=torch.float16) for k, s in W.expected_shapes("vgg16").items()
               if k != "features.28.bias"}, path)


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00" * 64)


def _empty_h5(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("something", data=np.zeros(3))


@pytest.mark.parametrize("make, message", [
    (_wrong_shape, r"features\.0\.weight has shape \(64, 3, 5, 5\) but vgg16 needs \(64, 3, 3, 3\)"),
    (_missing_layer, r"lacks features\.28\.bias"),
    (_garbage, r"neither a safetensors nor an HDF5"),
    (_empty_h5, r"no VGG conv layers"),
    (lambda path: None, r"does not exist"),
])
def test_bad_files_are_named_in_the_error(make, message, tmp_path):
    path = tmp_path / "bad-weights.bin"
    make(path)
    with pytest.raises(W.WeightsError, match=message) as info:
        W.load_weights(path)
    assert str(path) in str(info.value)

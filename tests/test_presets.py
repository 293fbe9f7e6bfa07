"""The presets: the painterly default against the subtle one it replaced (issue #17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from brushwork import Stylizer, distances, images, presets
from brushwork.errors import OptionError


def test_default_paints_more_than_subtle_at_a_price_in_content(content_path: Path, style_path: Path) -> None:
    # each preset's recipe, smaller and shorter: the default's pyramid lays down style single-scale misses
    scores = {}
    for name in ("subtle", "default"):
        config = presets.get(name).with_(size=64, iterations=20, precision="float32")
        config = config.with_(pyramid_iterations=(10,) * len(config.pyramid))
        result = Stylizer(config).run(content_path, style_path, seed=0)
        scores[name] = distances(result.image, content_path, style_path)
    assert scores["default"].style < 0.8 * scores["subtle"].style
    assert scores["default"].content > scores["subtle"].content


def test_subtle_and_default_differ_only_in_numbers_a_strength_can_span() -> None:
    # issue #13's --strength is to move between the two: no layer, loss or optimiser differs once a strength
    # turns the default's goal off, and with it the layer weights that belong to the goal
    subtle, default = presets.get("subtle"), presets.get("default")
    same = ("arch", "pooling", "content_layers", "style_layers", "style_layer_weights", "loss_form", "optimizer",
            "init", "precision")
    assert all(getattr(subtle, f) == getattr(default, f) for f in same)
    assert default.pyramid and not subtle.pyramid
    assert default.style_goal and default.layer_weights == (2, 2, 2, 1, 1) and subtle.layer_weights is None
    for off in (default.with_(strength=0.5), default.with_(style_weight=3), default.with_(style_goal=0),
                default.with_(style_goal=0).with_(strength=0.5)):  # video turns the goal off the last two ways
        assert off.style_goal == 0 and off.layer_weights is None
    # the pyramid detail is an option (painterly.md, section 15); strength and weights turn it off as they turn off
    # the goal (tests/test_strength.py)
    assert default.pyramid_detail == 0
    with pytest.raises(OptionError, match="pyramid_detail must be a number at least 0 and at most 1"):
        default.with_(pyramid_detail=1.5)
    given = default.with_(style_weight=3, style_layer_weights=(1, 1, 1, 2, 2))
    assert given.with_(style_goal=0).layer_weights == (1, 1, 1, 2, 2)  # weights the user gave stay


def test_layer_weights_follow_their_layers() -> None:
    # the preset's five weights were for its five layers: other layers are weighted equally, and a count that
    # does not match, or a layer named twice, is refused (zip would have dropped layers without a word)
    fewer = presets.get("default").with_(style_layers=("relu1_1", "relu3_1"))
    assert fewer.layer_weights is None and fewer.style_goal == presets.get("default").style_goal
    with pytest.raises(OptionError, match="2 style layer weights for 5 style layers"):
        presets.Config(style_layer_weights=(1.0, 2.0))
    with pytest.raises(OptionError, match="give one weight per layer"):
        presets.get("default").with_(style_layers=("relu1_1",), style_layer_weights=(1.0, 2.0))
    with pytest.raises(OptionError, match="all 0"):
        presets.Config(style_layer_weights=(0.0,) * 5)
    with pytest.raises(OptionError, match="name each layer once"):
        presets.Config(style_layers=("relu1_1", "relu1_1"), style_layer_weights=(1.0, 3.0))


def test_layer_weights_go_with_the_layers_they_were_given_for(style_path: Path) -> None:
    # the style targets come in the network's order; weights given in another order follow their layers' names
    from brushwork.perceptual import Perceptual
    from brushwork.weights import load_weights

    config = presets.Config(style_layers=("relu3_1", "relu1_1"), style_layer_weights=(1.0, 3.0), precision="float32")
    term = Perceptual(config, load_weights("vgg16")).style_term([images.load(style_path)], [1.0], 32)
    assert dict(zip(term.layers, term.layer_weights)) == {"relu1_1": 3.0, "relu3_1": 1.0}


def test_job_records_leave_out_newer_fields_at_their_defaults() -> None:
    # a batch, video or print job started before the histogram term existed still resumes: its record had no
    # such keys, and the same recipe's record has none now
    from dataclasses import asdict

    before = {"arch", "balance", "compile", "content_layers", "content_weight", "goal_layer_weights", "history",
              "init", "iterations", "loss_form", "lr", "noise", "optimizer", "pooling", "precision", "preserve_colors",
              "print_every", "pyramid", "pyramid_iterations", "pyramid_px", "size", "strength", "style_goal",
              "style_layer_weights", "style_layers", "style_scale", "style_size", "style_weight", "tv_kind",
              "tv_weight"}  # the fields of the seventh session's records: a newer one needs a LATER_FIELDS entry
    assert set(presets.Config().record()) == before
    old_default = presets.DEFAULT.with_(histogram_weight=0.0)
    assert old_default.record() == {k: v for k, v in asdict(old_default).items() if k in before}
    # the default's own recipe changed in the fifteenth session: its jobs from before are changed jobs
    assert presets.DEFAULT.record()["histogram_weight"] == 2.0
    assert presets.DEFAULT.with_(pyramid_detail=1.0).record()["pyramid_detail"] == 1.0  # a newer field once set

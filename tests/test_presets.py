"""The presets: the painterly default against the subtle one it replaced (issue #17)."""

from __future__ import annotations

from pathlib import Path

from brushwork import Stylizer, distances, presets


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
    # issue #13's --strength is to move between the two: no layer, loss or optimiser differs
    subtle, default = presets.get("subtle"), presets.get("default")
    same = ("arch", "pooling", "content_layers", "style_layers", "style_layer_weights", "loss_form", "optimizer",
            "init", "precision")
    assert all(getattr(subtle, f) == getattr(default, f) for f in same)
    assert default.pyramid and not subtle.pyramid

"""--strength for the optimiser: its ends, a monotone effect, the per-pair calibration, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from brushwork import Stylizer, distances, images, presets, strength
from brushwork.cli import main
from brushwork.errors import OptionError

SMALL = presets.DEFAULT.with_(size=64, iterations=20, pyramid_iterations=(10, 10, 10), precision="float32")


@pytest.fixture(scope="module")
def runs(content_path: Path, style_path: Path) -> dict[float, object]:
    """Content and Gram distances of 64 px runs at five strengths, one network for all."""
    stylizer = Stylizer(SMALL)
    found = {}
    for s in (0.0, 0.25, 0.5, 0.75, 1.0):
        stylizer.config = SMALL.with_(strength=s)
        found[s] = distances(stylizer.run(content_path, style_path, seed=0).image, content_path, style_path)
    return found


def test_strength_zero_is_the_photo_and_one_all_painting(runs) -> None:
    assert runs[0.0].content < 0.01  # only the content loss: the photo comes back
    assert strength.weights(1.0, 5.0) == (0.0, strength.MIDDLE)  # only the style loss
    assert runs[1.0].style < min(runs[s].style for s in (0.0, 0.25, 0.5, 0.75))
    assert runs[1.0].content > max(runs[s].content for s in (0.0, 0.25, 0.5, 0.75))


def test_more_strength_moves_further_from_the_photo_towards_the_painting(runs) -> None:
    levels = sorted(runs)
    assert all(runs[a].content < runs[b].content for a, b in zip(levels, levels[1:]))
    assert all(runs[a].style > runs[b].style for a, b in zip(levels, levels[1:]))


def test_middle_strength_is_the_default_balance_on_an_average_pair() -> None:
    assert strength.weights(0.5) == (presets.DEFAULT.content_weight, presets.DEFAULT.style_weight)


def test_the_run_uses_the_weights_calibrated_for_its_pair(shared: Path) -> None:
    """A pair whose content gives way more easily gets less style weight at the same strength, and the run's
    combined loss is made with exactly those weights (this fails if run() ignores the calibration)."""
    assert strength.EXPONENT > 0
    stylizer = Stylizer(SMALL.with_(strength=0.5, pyramid=(), pyramid_iterations=(), iterations=2))
    pairs = [(shared / "images/content" / c, shared / "images/style" / s)
             for c, s in (("astronaut.png", "vangogh_starry_night.jpg"), ("clock_motion.png", "picabia_udnie.jpg"))]
    weights = [stylizer.loss_weights(c, [s]) for c, s in pairs]
    assert weights[0][1] > 1.5 * weights[1][1]  # astronaut's content holds; the clock's gives way
    for (content, style), (cw, sw) in zip(pairs, weights):
        expected = strength.weights(0.5, strength.disturbance(stylizer, images.load(content),
                                                              [images.load(style)], [1.0]))
        assert (cw, sw) == pytest.approx(expected)
        steps = []
        stylizer.run(content, style, seed=0, callback=steps.append)
        assert steps[-1].loss == pytest.approx(cw * steps[-1].losses["content"] + sw * steps[-1].losses["style"],
                                               rel=1e-5)


@pytest.mark.parametrize("argv, needle", [
    (["--strength", "1.5"], "--strength: must be a number at least 0 and at most 1"),
    (["--strength", "0.5", "--style-weight", "3"], "give --strength or --style-weight, not both"),
    (["--strength", "0.5", "--preset", "seed"], "strength is calibrated for the relative losses"),
])
def test_bad_strength_is_one_clear_line_and_no_output(argv, needle, tmp_path, content_path, style_path,
                                                      capsys) -> None:
    out = tmp_path / "o.png"
    try:  # argparse's own check exits with 2, the engine's errors return 1
        code = main(["stylize", str(content_path), "--style", str(style_path), "--size", "32", "-o", str(out), *argv])
    except SystemExit as exc:
        code = exc.code
    assert code in (1, 2)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert needle in err, err
    assert not out.exists()


def test_config_refuses_a_strength_outside_zero_to_one() -> None:
    with pytest.raises(OptionError, match="strength must be a number at least 0 and at most 1"):
        presets.DEFAULT.with_(strength=-0.1)

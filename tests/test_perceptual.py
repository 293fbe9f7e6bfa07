"""The one perceptual criterion: batches, and the judge measuring through it."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from brushwork import images, presets
from brushwork.perceptual import Perceptual
from brushwork.weights import load_weights


def test_a_batch_scores_the_mean_of_its_images(content_path, style_path) -> None:
    p = Perceptual(presets.DEFAULT.with_(precision="float32"), load_weights("vgg16"))
    photo = images.to_tensor(images.load(content_path).resize((48, 32)))
    other = photo.flip(-1)
    style = [images.load(style_path)]
    single = [p.evaluate(x, p.terms(x * 0.5 + 60, style, [1.0])) for x in (photo, other)]
    batch = torch.cat([photo, other])
    both = p.evaluate(batch, p.terms(batch * 0.5 + 60, style, [1.0]))
    mean_style = (single[0]["style"] + single[1]["style"]) / 2
    assert torch.allclose(both["style"], mean_style, rtol=1e-4)
    assert both["content"] > 0


def test_the_judge_is_the_criterion(content_path, style_path) -> None:
    from brushwork.evaluate import distances

    content = images.load(content_path).resize((60, 40), Image.LANCZOS)
    assert distances(content, content_path, style_path).content < 1e-6  # itself, resized the same way
    d = distances(content.transpose(0), content_path, style_path)  # mirrored: far in content
    assert d.content > 0.1 and d.style > 0


def test_a_judge_for_many_outputs_measures_as_distances_does(content_path, style_path) -> None:
    from brushwork.evaluate import distances, judge

    content = images.load(content_path).resize((60, 40), Image.LANCZOS)
    measure = judge(content_path, style_path, (60, 40))
    for out in (content, content.transpose(0)):
        assert measure(out) == distances(out, content_path, style_path)
    with pytest.raises(ValueError, match="60x40 outputs, not 40x60"):
        measure(content.transpose(2))  # transposed: another size


def test_the_judges_style_is_the_mean_of_its_layers(content_path, style_path) -> None:
    from brushwork.evaluate import STYLE_LAYERS, _judge, distances

    out = images.load(content_path).resize((60, 40), Image.LANCZOS).transpose(0)
    d = distances(out, content_path, style_path)
    assert list(d.style_layers) == list(STYLE_LAYERS) and len(set(d.style_layers.values())) == len(STYLE_LAYERS)
    net = _judge("cpu")  # the criterion's own style term over all five layers at once
    whole = net.style_term([images.load(style_path)], [1.0], 60)
    with torch.no_grad():
        expected = net.evaluate(images.to_tensor(out), [(whole, 1.0)])["style"].item()
    assert d.style == pytest.approx(expected, rel=1e-5)


def test_a_tall_painting_at_a_tiny_level_is_raised_to_the_networks_minimum() -> None:
    """A 4:5 painting fitted to a 17 px level would be 14 px wide, under conv5's 16: its target is made larger."""
    p = Perceptual(presets.DEFAULT.with_(precision="float32"), load_weights("vgg16"))
    painting = Image.fromarray((torch.rand(50, 40, 3) * 255).byte().numpy())
    content = torch.rand(1, 3, 17, 17) * 255
    values = p.evaluate(content, p.terms(content, [painting], [1.0]))
    assert torch.isfinite(values["style"]) and values["style"] > 0


def test_the_histogram_term_is_for_whole_pictures_only(content_path, style_path) -> None:
    # regions and keep masks have no histogram of their own to match (README's option table); the default has the
    # term, the subtle preset and a strength none
    photo = images.to_tensor(images.load(content_path).resize((48, 32)))
    style = [images.load(style_path)]
    names = lambda p, **kw: [term.name for term, _ in p.terms(photo, style, [1.0], **kw)]  # noqa: E731
    default = Perceptual(presets.DEFAULT.with_(precision="float32"), load_weights("vgg16"))
    assert names(default) == ["content", "style", "histogram"]
    mask = torch.ones(1, 1, 32, 48)
    assert "histogram" not in names(default, masks=[mask]) + names(default, keep=mask * 0)
    for config in (presets.SUBTLE, presets.DEFAULT.with_(strength=0.5)):
        assert "histogram" not in names(Perceptual(config.with_(precision="float32"), load_weights("vgg16")))


def test_the_histogram_loss_brings_the_painting_s_distribution(content_path, style_path) -> None:
    from brushwork import Stylizer
    from brushwork.losses import HistogramTerm

    base = presets.DEFAULT.with_(size=64, iterations=15, precision="float32", pyramid=(), pyramid_iterations=())
    judge = Perceptual(base.with_(histogram_weight=1.0), load_weights("vgg16"))
    term = HistogramTerm(judge._style_targets([images.load(style_path)], [1.0], 64, tables=True)[1])
    score = {}
    for weight in (0.0, 4.0):
        x = images.to_tensor(Stylizer(base.with_(histogram_weight=weight)).run(content_path, style_path, seed=0).image)
        score[weight] = float(term(judge.features(x, term.layers), x))
    assert score[4.0] < 0.8 * score[0.0]


def test_a_print_s_tiled_level_goes_without_the_histogram_and_does_not_spoil_it_for_whole_pictures(
        content_path, style_path) -> None:
    # the tiled level skips the term; a whole picture at the same size afterwards (a batch's next photo) still
    # gets it, with its tables computed then (they were once cached empty by the tiled call)
    from brushwork import tiles

    p = Perceptual(presets.DEFAULT.with_(precision="float32", histogram_weight=2.0), load_weights("vgg16"))
    photo = images.to_tensor(images.load(content_path).resize((96, 64)))
    style = [images.load(style_path)]
    p.tiling = tiles.Tiling(64, 96, core=32, margin=16)
    assert [term.name for term, _ in p.terms(photo, style, [1.0])] == ["content", "style"]
    p.tiling = None
    terms = p.terms(photo, style, [1.0])
    assert [term.name for term, _ in terms] == ["content", "style", "histogram"]
    assert terms[2][0].tables["relu1_1"].shape == (64, 1024)

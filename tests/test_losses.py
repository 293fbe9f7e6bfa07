from __future__ import annotations

import pytest
import torch

from brushwork import losses
from brushwork.losses import ContentTerm, StyleTerm, gram, relative_sq_error, style_targets, total_variation


def test_gram_matches_definition() -> None:
    f = torch.randn(1, 4, 3, 5)
    m = f.reshape(4, 15)
    assert torch.allclose(gram(f)[0], m @ m.T / 15, atol=1e-5)
    assert torch.allclose(gram(f, normalise=False)[0], m @ m.T, atol=1e-5)


def test_gram_of_bfloat16_features_is_float32() -> None:
    assert gram(torch.randn(1, 4, 3, 3).bfloat16()).dtype == torch.float32


def test_relative_error_is_scale_free() -> None:
    a, t = torch.randn(10), torch.randn(10)
    assert torch.isclose(relative_sq_error(a, t), relative_sq_error(100 * a, 100 * t))
    assert relative_sq_error(t, t) == 0


def test_total_variation_by_hand() -> None:
    img = torch.tensor([[[[0.0, 1.0], [3.0, 7.0]]]])
    # vertical differences 3, 6; horizontal 1, 4
    assert total_variation(img, "l1").item() == pytest.approx(3 + 6 + 1 + 4)
    assert total_variation(img, "l2").item() == pytest.approx((9 + 36) / 2 + (1 + 16) / 2)
    with pytest.raises(ValueError):
        total_variation(img, "l3")


def test_terms_are_zero_at_their_targets() -> None:
    f = {"relu1_1": torch.rand(1, 8, 6, 6)}
    assert ContentTerm(dict(f))(f, torch.zeros(1)).item() == 0
    assert StyleTerm(style_targets([f], [1.0], "relative"))(f, torch.zeros(1)).item() == pytest.approx(0, abs=1e-12)
    assert StyleTerm(style_targets([f], [1.0], "mse"), form="mse")(f, torch.zeros(1)).item() == 0


def test_blending_styles_gives_the_same_gradient_as_summing_losses() -> None:
    f1, f2 = ({"relu1_1": torch.rand(1, 4, 5, 5)} for _ in range(2))
    x = torch.rand(1, 4, 5, 5, requires_grad=True)
    blended = style_targets([f1, f2], [0.25, 0.75], "relative")["relu1_1"]
    (gram(x) - blended).pow(2).sum().backward()
    g_blend = x.grad.clone()
    x.grad = None
    (0.25 * (gram(x) - gram(f1["relu1_1"])).pow(2).sum()
     + 0.75 * (gram(x) - gram(f2["relu1_1"])).pow(2).sum()).backward()
    assert torch.allclose(g_blend, x.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("blend", [[1.0], [-1.0, 2.0], [0.0, 0.0]])
def test_bad_blend_weights(blend: list[float]) -> None:
    f = {"relu1_1": torch.rand(1, 2, 2, 2)}
    with pytest.raises(ValueError):
        style_targets([f, f], blend, "relative")


def _quantiles_of(m: torch.Tensor) -> torch.Tensor:
    return losses.quantile_table(m.contiguous())


@pytest.mark.parametrize("chunk", [losses.HISTOGRAM_CHUNK, 100])
def test_histogram_matching_gives_the_painting_s_distribution_in_the_photo_s_order(chunk, monkeypatch) -> None:
    monkeypatch.setattr(losses, "HISTOGRAM_CHUNK", chunk)  # 100: many parts, as at a print's size
    g = torch.Generator().manual_seed(0)
    photo = torch.randn(1, 3, 40, 50, generator=g).contiguous(memory_format=torch.channels_last)
    painting = torch.rand(1, 3, 30, 30, generator=g) * 4 + 1  # another distribution altogether
    table = losses.quantile_table(painting)
    m = losses.histogram_matched(photo, table)
    assert m.shape == photo.shape
    assert torch.allclose(_quantiles_of(m), table, atol=0.05)  # the painting's values ...
    for c in range(3):  # ... in the photo's order: a higher value stays higher
        order = photo[0, c].flatten().argsort()
        assert (m[0, c].flatten()[order].diff() >= -1e-5).all()


def test_histogram_matching_in_parts_equals_matching_at_once(monkeypatch) -> None:
    f = torch.randn(2, 4, 30, 20).relu()
    table = losses.quantile_table(torch.randn(1, 4, 16, 16).relu() * 3)
    whole = losses.histogram_matched(f, table)
    monkeypatch.setattr(losses, "HISTOGRAM_CHUNK", 37)
    assert torch.allclose(losses.histogram_matched(f, table), whole, atol=1e-6)


def test_histogram_matching_is_the_same_in_either_memory_order(monkeypatch) -> None:
    monkeypatch.setattr(losses, "HISTOGRAM_CHUNK", 50)  # parts of positions (channels last) or of channels (first)
    f = torch.randn(2, 6, 12, 20).relu()
    table = losses.quantile_table(torch.randn(1, 6, 16, 16) * 2)
    f[1] += 3  # the second picture's values elsewhere: each picture is ranked, and reads its table, on its own
    first = losses.histogram_matched(f, table)
    last = losses.histogram_matched(f.contiguous(memory_format=torch.channels_last), table)
    assert last.is_contiguous(memory_format=torch.channels_last) and first.is_contiguous()
    assert torch.allclose(first, last, atol=1e-6)
    each = torch.cat([losses.histogram_matched(f[i:i + 1], table) for i in range(2)])
    assert torch.equal(first, each)
    for layout in (torch.contiguous_format, torch.channels_last):  # an earlier result's memory, used again
        kept = losses.histogram_matched(f.contiguous(memory_format=layout), table)
        other = f.flip(-1).contiguous(memory_format=layout)  # other ranks at every position
        again = losses.histogram_matched(other, table, out=kept)
        assert again.data_ptr() == kept.data_ptr() and torch.equal(again, losses.histogram_matched(other, table))


def test_histogram_matching_of_a_flat_or_broken_map_stays_in_the_table() -> None:
    table = losses.quantile_table(torch.rand(1, 3, 16, 16) * 2 + 1)
    for level in (1.7, 7.0, 100.0, 123.456):  # a flat picture: one value a channel (1.7 read the highest point once)
        flat = losses.histogram_matched(torch.full((1, 3, 8, 8), level), table)
        assert torch.allclose(flat[0, :, 0, 0], table[:, 0], atol=0.01) and (flat == flat[..., :1, :1]).all()
    broken = torch.rand(1, 3, 8, 8)
    broken[0, 1, 2, 3], broken[0, 2] = float("nan"), float("inf")  # the loss reports these; matching must not crash
    m = losses.histogram_matched(broken, table)
    assert ((m >= table[:, :1, None]) & (m <= table[:, -1:, None])).all()


@pytest.mark.parametrize("fine", [losses.HISTOGRAM_FINE, 2])  # 2: the nearest point's +0.5 is needed (2.9% without)
def test_histogram_matching_is_near_the_exact_rank_mapping(fine: int) -> None:
    g = torch.Generator().manual_seed(2)
    f = torch.randn(1, 4, 64, 64, generator=g).exp()  # skewed, as ReLU features are
    table = losses.quantile_table(torch.rand(1, 4, 40, 40, generator=g) ** 2 * 3)
    flat = f[0].flatten(1)
    ranks = flat.argsort(1).argsort(1).float() / (flat.shape[1] - 1)  # each value's exact rank in its channel
    exact = losses._at_ranks(table, ranks.t()[None])[0].t().reshape(f.shape)
    assert ((losses.histogram_matched(f, table, fine=fine) - exact).norm() / exact.norm()) < 0.02


def test_blended_tables_pool_the_paintings_by_weight() -> None:
    low, high = torch.zeros(1, 1024), torch.ones(1, 1024)
    mixed = losses.blend_tables([low, high], [3, 1])  # three quarters of the values 0, a quarter 1
    assert mixed[0, :760].max() == 0 and mixed[0, 780:].min() == 1


def test_the_histogram_term_is_zero_on_the_painting_and_its_gradient_lowers_it() -> None:
    g = torch.Generator().manual_seed(1)
    painting = torch.rand(1, 8, 24, 24, generator=g) ** 3
    term = losses.HistogramTerm({"relu1_1": losses.quantile_table(painting)})
    assert float(term({"relu1_1": painting}, painting)) < 1e-3
    f = torch.rand(1, 8, 24, 24, generator=g).requires_grad_(True)
    first = term({"relu1_1": f}, f)
    first.backward()
    with torch.no_grad():
        f -= 0.1 * f.grad / f.grad.norm() * f.norm()
    assert term({"relu1_1": f}, f).item() < first.item()


def test_the_histogram_term_refuses_a_second_derivative() -> None:
    f = torch.rand(1, 3, 6, 6, requires_grad=True)
    term = losses.HistogramTerm({"relu1_1": losses.quantile_table(torch.rand(1, 3, 8, 8))})
    value = term({"relu1_1": f}, f) + (f ** 3).sum()
    with pytest.raises(RuntimeError, match="no second derivative"):
        torch.autograd.grad(value, f, create_graph=True)
    assert torch.autograd.grad(term({"relu1_1": f}, f), f)[0].abs().sum() > 0  # a first derivative is fine


def test_the_pull_s_gradient_is_the_relative_error_s() -> None:
    f = torch.randn(1, 4, 5, 6, requires_grad=True)
    m = torch.randn(1, 4, 5, 6)
    value = losses._Pull.apply(f, m.clone())  # it overwrites its target
    value.backward()
    mine = f.grad.clone()
    f.grad = None
    reference = losses.relative_sq_error(f, m)
    reference.backward()
    assert torch.isclose(value, reference) and torch.allclose(mine, f.grad, atol=1e-6)


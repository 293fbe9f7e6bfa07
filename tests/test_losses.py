from __future__ import annotations

import pytest
import torch

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

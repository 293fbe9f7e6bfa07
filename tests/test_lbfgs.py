"""The compact L-BFGS against the textbook two-loop recursion, on a quadratic with a known minimum."""

from __future__ import annotations

import pytest
import torch

from brushwork import presets
from brushwork.optimise import LBFGS, descend


def two_loop(pairs: list[tuple[torch.Tensor, torch.Tensor]], g: torch.Tensor, gamma: float) -> torch.Tensor:
    """Nocedal & Wright's Algorithm 7.4, in float64: the reference direction -H g."""
    q, alphas = -g.double(), []
    for s, y in reversed(pairs):
        alpha = torch.dot(s, q) / torch.dot(y, s)
        q -= alpha * y
        alphas.append(alpha)
    q *= gamma
    for (s, y), alpha in zip(pairs, reversed(alphas)):
        q += s * (alpha - torch.dot(y, q) / torch.dot(y, s))
    return q


def quadratic(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=gen, dtype=torch.float64)
    return a @ a.T / n + 0.5 * torch.eye(n, dtype=torch.float64), torch.randn(n, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("history", [1, 3, 8])
def test_directions_match_the_two_loop_recursion(history: int) -> None:
    a, b = quadratic()
    x = torch.zeros(40, dtype=torch.float64)
    lbfgs, pairs, last, gamma = LBFGS(history=history), [], None, 1.0
    for step in range(12):  # more steps than slots: the ring buffer wraps
        g = a @ x - b
        d = lbfgs.direction(x.float(), g.float()).double()
        if last is None:
            assert torch.allclose(d, -g / g.abs().max(), rtol=1e-5)  # first step: 1 pixel at most
        else:
            s, y = x - last[0], g - last[1]
            pairs = (pairs + [(s, y)])[-history:]
            gamma = float(torch.dot(s, y) / torch.dot(y, y))
            ref = two_loop(pairs, g, gamma)
            assert (d - ref).norm() <= 1e-3 * ref.norm(), f"step {step}"
        last = (x.clone(), g.clone())
        x = x + d
    assert (a @ x - b).norm() < 1e-2 * b.norm()  # and it solves the system


def test_a_pair_without_positive_curvature_is_left_out() -> None:
    a, b = quadratic()
    lbfgs = LBFGS(history=5)
    x0 = torch.zeros(40, dtype=torch.float64)
    g0 = a @ x0 - b
    lbfgs.direction(x0.float(), g0.float())
    x1 = x0 + 0.01 * torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    g1 = g0 - (a @ (x1 - x0))  # y = -A s: negative curvature, as on a non-convex loss
    d1 = lbfgs.direction(x1.float(), g1.float()).double()
    # no usable pair yet: the first step's scale, not a step blown up by 1 / (y.s)
    assert torch.allclose(d1, -g1 / g0.abs().max(), rtol=1e-5)
    x2 = x1 + d1
    g2 = a @ x2 - b
    d2 = lbfgs.direction(x2.float(), g2.float()).double()
    s, y = x2 - x1, g2 - g1
    ref = two_loop([(s, y)], g2, float(torch.dot(s, y) / torch.dot(y, y)))
    assert (d2 - ref).norm() <= 1e-3 * ref.norm()


def test_history_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LBFGS(history=0)


class Poisoned:
    """An ill-conditioned quadratic criterion (curvatures 1 to 1000, so no solver finishes in a few steps)
    whose `bad`-th evaluation reports its loss 1000x too high, as a step gone far astray would."""

    def __init__(self, target: torch.Tensor, bad: int) -> None:
        self.target, self.bad, self.calls = target, bad, 0
        self.curvature = torch.logspace(0, 3, target.numel()).view_as(target)

    def evaluate(self, x: torch.Tensor, terms: list) -> dict[str, torch.Tensor]:
        self.calls += 1
        loss = (self.curvature * (x - self.target).pow(2)).mean()
        return {"fit": loss * (1000.0 if self.calls == self.bad else 1.0)}


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_step_that_blows_the_loss_up_is_undone(optimizer: str) -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 8, 8, generator=gen) * 255
    x0 = torch.rand(1, 3, 8, 8, generator=gen) * 255
    criterion = Poisoned(target, bad=5)
    term = type("T", (), {"name": "fit"})()
    settings = presets.Config(optimizer=optimizer, lr=5.0)
    steps = list(descend(criterion, x0, [(term, 1.0)], 12, settings))
    losses = [s.loss for s in steps]
    if optimizer == "lbfgs":
        # the 5th evaluation (the start of step 5) blew up: step 4 is undone, step 5 starts from its image again
        assert criterion.calls == 13
        assert torch.equal(steps[4].image, steps[3].image)
        # and the memory is emptied: the first step of a fresh L-BFGS moves the largest pixel by exactly 1
        assert (steps[5].image - steps[4].image).abs().max().item() == pytest.approx(1.0, rel=1e-4)
        assert max(losses) <= losses[0]
        assert losses[-1] < 0.01 * losses[0]
    else:  # only L-BFGS, whose memory is what sends a step astray, is guarded
        assert criterion.calls == 12
        assert losses[4] > 100 * losses[3]

"""`strength`: one number from 0 (the photo) to 1 (all painting) that means about the same on every pair.

Fixed loss weights strike a different balance on every photo and painting: at the default's style weight 2
the content distance ran from 0.28 (astronaut + Starry Night) to 0.54 (brick + Turner), and at weight 0.5
the order of the pairs changed. No quantity measured before the run predicted it on the shared pairs
(benchmarks/results/strength.md), so a strength is a target instead: the content distance that the shared
pairs reach on average at style weight w0 = MIDDLE * (S / (1 - S)) ** GAIN (content weight 1),

    target(S) = exp(A + B * log w0)        (fitted on the shared pairs: benchmarks/strength.py fit)

and the run steers to it: every EVERY iterations the style weight is multiplied by
(target / content distance now) ** (DAMPING / B), B being how content distance grows with the weight.
S = 0.5 is style weight 2 (the `subtle` preset's, and the default's start) on an average pair; S = 0 leaves
only the content loss, S = 1 only the style loss. Checked on four held-out pairs never fitted on.

A style goal (`Config.style_goal`, the default preset's) steers the same weight from the other side: while the
run's style loss (a relative Gram distance, weighted by the run's style layer weights) is above the goal, the
weight rises every EVERY iterations, never below its start and never past GOAL_MOST times it; below the goal it
falls back towards the start. It runs at
every pyramid level, where small pictures score higher Gram distances, so most pairs get more style in their
large shapes; at full size a painting the start already reaches (Starry Night on the astronaut) returns to
about its old balance, the others keep more of the painting (benchmarks/results/painterly.md, sections 7-8).
"""

from __future__ import annotations

import math

MIDDLE = 2.0  # style weight at strength 0.5 before steering: the default preset's
GAIN = math.log(4) / math.log(3)  # strength 0.25 / 0.75 start at a quarter / four times MIDDLE
A, B = -1.70, 0.80  # log content distance = A + B log style weight, on average over the shared pairs (256 px)
EVERY = 5  # iterations between adjustments of the style weight
DAMPING = 0.7  # share of the full correction made at each adjustment, so the weight settles
MOST = 4.0  # largest factor one adjustment may change the weight by
GOAL_MOST = 16.0  # a style goal raises the weight to at most this many times its start (8 lost three pairs' style
# embedding that 16 wins, at no cost to the astronaut's content: painterly.md, section 8)


def start(strength: float) -> tuple[float, float]:
    """(content weight, style weight) a run at `strength` starts from."""
    if strength >= 1:
        return 0.0, MIDDLE
    if strength <= 0:
        return 1.0, 0.0
    return 1.0, MIDDLE * (strength / (1 - strength)) ** GAIN


def target(strength: float) -> float:
    """The relative content distance `strength` means (strength.py's docstring)."""
    return math.exp(A + B * math.log(start(strength)[1]))


def steered(strength: float) -> bool:
    """Whether a run at `strength` adjusts its style weight (the ends have only one loss each)."""
    return 0 < strength < 1


def adjust(weight: float, content: float, goal: float) -> float:
    """The style weight after one adjustment, the content distance being `content` with `weight`."""
    factor = (goal / max(content, 1e-6)) ** (DAMPING / B)
    return weight * min(max(factor, 1 / MOST), MOST)


def push(weight: float, style: float, goal: float, start: float) -> float:
    """The style weight after one adjustment towards a style goal, the Gram style distance being `style`."""
    factor = min(max((style / goal) ** DAMPING, 1 / MOST), MOST)
    return min(max(weight * factor, start), start * GOAL_MOST)

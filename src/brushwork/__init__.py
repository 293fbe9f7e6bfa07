"""brushwork: repaint a photo (or a video) in the style of a painting.

    import brushwork
    img = brushwork.stylize("photo.jpg", "starry.jpg", size=512)
    img.save("out.png")
"""

from __future__ import annotations

from .evaluate import Distances, distances
from .optimise import Result, Step, Stylizer
from .presets import Config, PRESETS
from . import presets as _presets

__all__ = ["stylize", "Stylizer", "Config", "PRESETS", "Result", "Step", "distances", "Distances"]
__version__ = "0.1.0"


def stylize(content, style, *, preset: str = "default", style_blend=None, weights=None, device=None,
            seed: int | None = None, callback=None, init=None, **options):
    """One-liner: stylise `content` with one style image (or a list) and return a PIL image.

    `options` are any `Config` fields (size=512, iterations=300, strength=0.7, style_weight=..., ...).
    """
    config = _presets.get(preset).with_(**options)
    result = Stylizer(config, weights=weights, device=device).run(
        content, style, style_blend=style_blend, init=init, callback=callback, seed=seed)
    return result.image

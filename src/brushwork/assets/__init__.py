"""Files that ship inside the package: the demo images and the bundled VGG16 weights (see LICENCES.md)."""

from pathlib import Path

HERE = Path(__file__).parent
DEMO_CONTENT = HERE / "astronaut.jpg"
DEMO_STYLE = HERE / "starry_night.jpg"

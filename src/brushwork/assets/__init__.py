"""Files that ship inside the package: the demo images and sounds and the bundled VGG16 weights (see
LICENCES.md)."""

from pathlib import Path

HERE = Path(__file__).parent
DEMO_CONTENT = HERE / "astronaut.jpg"
DEMO_STYLE = HERE / "starry_night.jpg"
DEMO_SPEECH = HERE / "audio" / "speech.ogg"  # made by scripts/make_audio_examples.py --seconds 4
DEMO_MELODY = HERE / "audio" / "melody.ogg"
DEMO_WHALE = HERE / "audio" / "humpback.ogg"

"""Files that ship inside the package: the demo images and sounds and the bundled VGG16 weights (see
LICENCES.md)."""

from pathlib import Path

HERE = Path(__file__).parent
DEMO_CONTENT = HERE / "astronaut.jpg"
DEMO_STYLE = HERE / "starry_night.jpg"
DEMO_MODEL = HERE / "models" / "starry.safetensors"  # the bundled network for DEMO_STYLE's painting
DEMO_SPEECH = HERE / "audio" / "speech.ogg"  # made by scripts/make_audio_examples.py --seconds 4
DEMO_MELODY = HERE / "audio" / "melody.ogg"
DEMO_WHALE = HERE / "audio" / "humpback.ogg"
# The paintings a user can pick without a file of their own (`brushwork ui`'s gallery), by title.
PAINTINGS = {
    "The Starry Night (van Gogh)": DEMO_STYLE,
    "The Scream (Munch)": HERE / "the_scream.jpg",
    "Composition VII (Kandinsky)": HERE / "composition_vii.jpg",
    "The Cliff Walk at Pourville (Monet)": HERE / "cliff_walk.jpg",
}

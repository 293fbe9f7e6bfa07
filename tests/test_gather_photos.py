"""The photo-set script records the right author and licence for each file (Debian machine-readable copyright)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from gather_photos import copyright_stanzas, licence_of  # noqa: E402

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: lomiri-wallpapers

Files: *
Copyright: 2018, Dalton Durst
License: Expat

Files: 16.04/Bridge_by_Sander_Klootwijk.jpg
Copyright: 2018. Sander Klootwijk
License: CC-BY-SA-4.0

Files: debian/*
Copyright: 2022-2023, Mike Gabriel
License: GPL-3+

License: CC-BY-SA-4.0
 Attribution-ShareAlike 4.0 International
 .
 long text
"""


def test_a_named_file_gets_its_own_stanza_not_the_packaging_one() -> None:
    stanzas = copyright_stanzas(COPYRIGHT)
    assert licence_of(stanzas, "Bridge_by_Sander_Klootwijk.jpg") == ("2018. Sander Klootwijk", "CC-BY-SA-4.0")
    assert licence_of(stanzas, "other.jpg") == ("2018, Dalton Durst", "Expat")

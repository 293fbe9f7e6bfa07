#!/usr/bin/env python3
"""Gather the offline training photo set for `brushwork train` from Debian wallpaper packages.

    python scripts/gather_photos.py --out out/photos        # needs apt-get (Debian/Ubuntu), no root for download

`apt-get download` fetches the packages without installing them, `dpkg-deb -x` unpacks them, and the
photographs listed below (picked by eye: photos only, no abstract or rendered art) are resized to
512 px on the longest side into one folder, with SOURCES.md recording each file's origin, author and
licence from the package's copyright file (and, for KDE's, the wallpaper's own metadata).

Never add ../shared/images or scikit-image's sample photos here: they are the photos brushwork is
evaluated on.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

PACKAGES = ["mate-backgrounds", "plasma-workspace-wallpapers", "lomiri-wallpapers",
            "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04"]
# (package, path under the unpacked package) of each photograph; a KDE wallpaper is its folder.
PHOTOS = [
    *[("mate-backgrounds", f"usr/share/backgrounds/mate/nature/{n}.jpg") for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
        "TwoWings", "Wood", "YellowFlower")],
    *[("plasma-workspace-wallpapers", f"usr/share/wallpapers/{n}") for n in (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
        "OneStandsOut", "Path", "summer_1am")],
    *[("lomiri-wallpapers-16.04", f"usr/share/backgrounds/{n}.jpg") for n in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi",
        "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi")],
    *[("lomiri-wallpapers-20.04", f"usr/share/backgrounds/{n}.jpg") for n in (
        "Infinite-Sea_by_Aury88", "Kleiber_by_Lukas_Baubkus")],
]
LONGEST = 512


def copyright_stanzas(text: str) -> list[dict[str, str]]:
    """The paragraphs of a machine-readable debian/copyright file, continuation lines folded."""
    stanzas = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields:
            stanzas.append(fields)
    return stanzas


def licence_of(stanzas: list[dict[str, str]], name: str) -> tuple[str, str]:
    """(copyright, licence) of the Files: stanza naming the file `name` (a basename; packages install
    files elsewhere than their upstream paths), else of the catch-all `*`; packaging (debian/*) is not a photo."""
    named = fallback = None
    for s in stanzas:
        for pattern in s.get("Files", "").split():
            if pattern == "*":
                fallback = s
            elif not pattern.startswith("debian/") and fnmatch.fnmatch(name, Path(pattern).name):
                named = s
    found = named or fallback
    if found is None:
        raise SystemExit(f"no copyright stanza covers {name}; check the package's copyright file")
    return found.get("Copyright", "?"), found.get("License", "?").split()[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/photos"), help="folder for the photos and SOURCES.md")
    ap.add_argument("--debs", type=Path, help="folder holding (or to hold) the downloaded .deb files")
    ap.add_argument("--no-update", action="store_true", help="skip apt-get update")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        debs = a.debs or Path(tmp) / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        missing = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
        if missing:
            if not a.no_update:
                subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["apt-get", "download", *missing], check=True, cwd=debs)
        root = Path(tmp) / "x"
        root.mkdir()
        for p in PACKAGES:
            subprocess.run(["dpkg-deb", "-x", str(next(debs.glob(f"{p}_*.deb"))), str(root / p)], check=True)
        rows = []
        Image.MAX_IMAGE_PIXELS = None  # 5K wallpapers from known packages, not untrusted input
        for package, rel in PHOTOS:
            src = root / package / rel
            stanzas = copyright_stanzas(next((root / package).glob("usr/share/doc/*/copyright")).read_text())
            holder, licence = licence_of(stanzas, src.name)
            if src.is_dir():  # a KDE wallpaper: the largest rendition, and the author in its metadata
                meta = json.loads((src / "metadata.json").read_text())["KPlugin"]
                holder = ", ".join(x["Name"] for x in meta.get("Authors", [])) + f" (package: {holder})"
                licence = f"{meta.get('License', '?')} (package: {licence})"
                src = max((src / "contents" / "images").glob("*.jpg"), key=lambda f: f.stat().st_size)
            with Image.open(src) as img:
                img.draft("RGB", (LONGEST * 2, LONGEST * 2))  # JPEG decodes at a reduced scale: fast
                img = img.convert("RGB")
                img.thumbnail((LONGEST, LONGEST), Image.LANCZOS)
                name = f"{package.split('-')[0]}_{Path(rel).stem}.jpg"
                img.save(a.out / name, quality=92)
            rows.append(f"| {name} | {package} | {rel} | {holder} | {licence} |")
            print(name, file=sys.stderr)
    (a.out / "SOURCES.md").write_text(
        "# Training photos\n\nGathered by scripts/gather_photos.py from Debian packages; resized to "
        f"{LONGEST} px on the longest side.\n\n| file | package | original | copyright / author | licence |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    print(f"{len(rows)} photos in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

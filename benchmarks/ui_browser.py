"""Drive `brushwork ui` in a real browser (Debian's chromium + chromedriver through Selenium), as a person
would: upload a photo, pick a painting, paint, wait for the result. The browser test uses it, and run as a
script it takes the README's screenshot of the page with a finished painting:

    python benchmarks/ui_browser.py --size 256 --iterations 75 -o docs/ui.jpg
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[1]


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            return f"{binary} is not installed (apt-get install -y chromium chromium-driver)"
    return None


def driver(width: int = 1400, height: int = 1000):
    """Headless chromium with a fresh profile, given both binaries so Selenium downloads nothing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="brushwork-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.profile_dir = profile  # removed by close()
    return browser


def close(browser) -> None:
    browser.quit()
    shutil.rmtree(browser.profile_dir, ignore_errors=True)


def _set_number(browser, elem_id: str, value: int) -> None:
    """A slider's number box: type the value and leave the box, as a person would."""
    from selenium.webdriver.common.keys import Keys

    box = browser.find_element("css selector", f"#{elem_id} input[type=number]")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.TAB)


def paint(browser, url: str, photo: Path, painting: int = 1, size: int = 32, iterations: int = 2,
          timeout: float = 120.0) -> str:
    """Load the page, upload `photo`, click the gallery's `painting`-th painting, paint; returns the
    painting's name as the page shows it once the result is there (the download button appears)."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, timeout)
    browser.get(url)
    upload = wait.until(ec.presence_of_element_located(("css selector", "#photo input[type=file]")))
    upload.send_keys(str(Path(photo).resolve()))
    wait.until(ec.presence_of_element_located(("css selector", "#photo img")))
    thumbs = wait.until(lambda b: b.find_elements("css selector", "#photo-gallery button img") or None)
    thumbs[painting].click()
    chosen = browser.find_element("css selector", "#photo-painting input")
    wait.until(lambda b: "Starry" not in chosen.get_attribute("value") if painting else True)
    _set_number(browser, "size", size)
    _set_number(browser, "iterations", iterations)
    time.sleep(0.5)  # let the page send the new values before the click reads them
    browser.find_element("css selector", "#paint").click()
    wait.until(ec.visibility_of_element_located(("css selector", "#download")))
    wait.until(ec.presence_of_element_located(("css selector", "#output img[src*='painting-']")))
    return chosen.get_attribute("value")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photo", default=str(ROOT / "src/brushwork/assets/astronaut.jpg"))
    p.add_argument("--painting", type=int, default=0, help="gallery position (0: The Starry Night)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=62)
    p.add_argument("-o", "--output", default=str(ROOT / "docs/ui.jpg"))
    args = p.parse_args()
    from brushwork.ui import serve

    page, url, root = serve(port=7861, block=False)
    browser = driver(1400, 1250)  # tall enough for the buttons under the pictures
    try:
        start = time.perf_counter()
        name = paint(browser, url, Path(args.photo), args.painting, args.size, args.iterations, timeout=1800)
        print(f"{name}: painted in {time.perf_counter() - start:.0f} s (page load included)")
        time.sleep(1)
        shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
        shot.save(args.output, quality=85, optimize=True)  # a JPEG: a third of the PNG's size
        print(args.output)
    finally:
        close(browser)
        page.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

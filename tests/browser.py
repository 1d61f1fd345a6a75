"""Render a page in headless Chromium (Debian's chromium), as a person's browser would."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import pytest

BROWSER = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IMAGES_CHECK = ('<script>window.addEventListener("load", () => { document.title = [...document.images].every('
                'i => i.complete && i.naturalWidth > 100) ? "images-ok" : "images-broken"; });</script>')


def rendered(page: Path, tmp_path: Path) -> str:
    """The DOM of ``page`` after loading; asserts that every image decoded and that a screenshot is not blank.
    Skips where chromium is missing, unless MIMAE_REQUIRE_BROWSER is set (as in CI)."""
    if BROWSER is None:
        if os.environ.get("MIMAE_REQUIRE_BROWSER"):
            pytest.fail("MIMAE_REQUIRE_BROWSER is set but chromium is not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    checked = tmp_path / f"checked-{page.name}"
    checked.write_text(page.read_text().replace("</body>", IMAGES_CHECK + "</body>"))
    command = [BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([*command, "--dump-dom", checked.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert "<title>images-ok</title>" in dom, dom[:500]
    shot = tmp_path / "shot.png"
    subprocess.run([*command, f"--screenshot={shot}", "--window-size=1200,1600", checked.as_uri()],
                   capture_output=True, timeout=120, check=True)
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1600, 1200) and pixels[..., :3].std() > 0.05  # drawn, not a blank page
    return dom

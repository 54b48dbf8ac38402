"""Open an HTML file in headless Chromium, as a person would with no server and no network, and
check what it shows: the tables, the images decoded, and a screenshot that is not blank.

`.ci/run` installs Chromium and sets RECSEC_REQUIRE_BROWSER=1, so in CI a missing browser fails;
elsewhere the check skips with a reason."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")

# Run after load; writes what the page shows into the DOM, which --dump-dom prints.
_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const marks = [...document.querySelectorAll("sup.sig")];
  const report = {tables: document.querySelectorAll("table").length,
                  images: images.length,
                  marks: marks.length,
                  // a mark a reader can see: laid out with a size, and saying what it means on hover
                  visible_marks: marks.filter(m => m.getBoundingClientRect().width > 0 && m.title.length > 0).length,
                  decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
                  height: document.body.scrollHeight};
  const out = document.createElement("pre"); out.id = "recsec-probe";
  out.textContent = JSON.stringify(report); document.body.appendChild(out);
});
</script>"""


def browser() -> str | None:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None and os.environ.get("RECSEC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"RECSEC_REQUIRE_BROWSER=1 but none of {', '.join(BROWSERS)} is on PATH")
    return found


def _run(binary: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--allow-file-access-from-files"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


def assert_renders(page: Path, tables: int, images: int, marks: int = 0) -> None:
    """At least `tables` tables, `images` decoded images and `marks` visible significance marks,
    and a screenshot with content."""
    binary = browser()
    if binary is None:
        pytest.skip(f"no headless Chromium ({', '.join(BROWSERS)}): `apt-get install chromium-headless-shell`")
    text = page.read_text()
    sources = re.findall(r'src="([^"]*)"', text)
    assert all(src.startswith("data:") for src in sources) and "<script" not in text and "<link" not in text, \
        "a self-contained page loads nothing from elsewhere (images inlined) and runs no script"
    with tempfile.TemporaryDirectory() as tmp:
        probed = Path(tmp) / "probed.html"
        probed.write_text(text.replace("</body>", _PROBE + "</body>"))
        dom = _run(binary, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
        match = re.search(r'<pre id="recsec-probe">(.*?)</pre>', dom.stdout)
        assert match, f"Chromium did not render {page}: {dom.stderr[-1500:]}"
        seen = json.loads(match.group(1))
        assert seen["tables"] >= tables and seen["decoded"] >= images and seen["decoded"] == seen["images"], seen
        assert seen["visible_marks"] >= marks and seen["visible_marks"] == seen["marks"], seen
        shot = Path(tmp) / "page.png"
        _run(binary, "--window-size=1280,1600", f"--screenshot={shot}", page.as_uri())
        assert shot.exists(), "Chromium wrote no screenshot"
        _assert_not_blank(shot)


def _assert_not_blank(png: Path) -> None:
    from PIL import Image

    with Image.open(png) as image:
        gray = image.convert("L")
        lo, hi = gray.getextrema()
        histogram = gray.histogram()
    assert hi - lo > 100, "the screenshot is one flat colour"
    # Text, tables and plots: a good share of the pixels are not the white background.
    assert sum(histogram[:200]) > 0.01 * sum(histogram), "the screenshot is almost empty"

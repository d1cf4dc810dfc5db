"""The run report in a real browser: headless Chromium opens ``report.html`` from disk, with no network.

The page records, on ``load``, whether every image decoded (``img.complete && img.naturalWidth > 0``)
and any script error, into ``<pre id="report-check">``; Chromium's ``--dump-dom`` gives the DOM back
after load, and ``--enable-logging=stderr`` prints every console message (``INFO:CONSOLE``), of which
there must be none. A deliberately broken page proves both checks can fail. The screenshot is kept
under the test's tmp dir (its path is printed).

Chromium is installed with apt-get where it is missing and we are root; where it cannot be, the tests
are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from test_run_report import FULL_RUNS, copy_run, write_profile

from mnist_models.report import html
from mnist_models.report.run import run_page

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0"]
CHECK = re.compile(r'<pre id="report-check"[^>]*>([^<]*)</pre>')


def _install_chromium() -> str:
    """Why Chromium could not be installed ('' when it was)."""
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "not root, so apt-get cannot install it"
    for command in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if command[1] == "install" and done.returncode == 0:
            return ""
    return f"apt-get install chromium failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"


@pytest.fixture(scope="module")
def chromium() -> str:
    """The path of a headless-capable Chromium (installed with apt-get where missing)."""
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        why = _install_chromium()
        found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
        if found is None:
            pytest.skip(f"no Chromium to render the report in: {why or 'installed, yet not on PATH'}")
    return found


def open_page(browser: str, page: Path, tmp_path: Path) -> tuple[dict, list[str]]:
    """Load the page in headless Chromium: what its check recorded, and every console message."""
    done = subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = CHECK.search(done.stdout)
    assert found, "the page's check did not run (no report-check in the DOM)"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(found.group(1).replace("&quot;", '"')), console


def screenshot(browser: str, page: Path, out: Path, tmp_path: Path, size: str = "1280,2400") -> Path:
    done = subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile-shot'}",
                           f"--window-size={size}", f"--screenshot={out}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]
    return out


def test_the_report_renders_offline_with_every_image_and_no_console_error(chromium, tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    folder = copy_run(FULL_RUNS[-1], results)
    (folder / "compare.md").write_text("# Comparison\n\n| case | change |\n|---|---|\n| v2 | 1.05× slower |\n")
    write_profile(results, "20261126T020000Z-v2-bf16")
    run_page.write_report(folder)
    page = folder / "report.html"
    check, console = open_page(chromium, page, tmp_path)
    expected = page.read_text().count("<img ")
    assert expected >= 9 and check["images"] == expected
    assert check["loaded"] == expected and check["failed"] == [] and check["errors"] == []
    assert console == [], console
    shot = screenshot(chromium, page, tmp_path / "report.png", tmp_path)
    image = Image.open(shot)
    assert image.size == (1280, 2400) and len(image.getcolors(maxcolors=1 << 20) or range(1 << 20)) > 50
    with capsys.disabled():
        print(f"\nreport screenshot: {shot}")


def test_the_browser_check_catches_broken_images_and_console_errors(chromium, tmp_path):
    markdown = "# Broken\n\n![not a png](plots/bad.png)\n"
    page = html.page(markdown, {"plots/bad.png": b"not a png"}, "broken").replace(
        "</main>", '</main><img alt="remote" src="https://example.invalid/a.png">'
        '<script>console.error("deliberate"); notDefined();</script>')
    path = tmp_path / "broken.html"
    path.write_text(page)
    check, console = open_page(chromium, path, tmp_path)
    assert check["images"] == 2 and check["loaded"] == 0 and set(check["failed"]) == {"not a png", "remote"}
    assert any("notDefined" in e for e in check["errors"])
    assert any("deliberate" in line for line in console)  # console.error
    assert any("Content Security Policy" in line for line in console)  # the remote image was refused

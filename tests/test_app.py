"""The web app in a real headless Chromium (Debian's, driven by Playwright): the sample runs to
an animation of the requested length, a corrupt image shows the command line's one-line error,
Cancel during the scene stage stops it and the next run finishes from the cache. The finished
page's screenshot is written to ``$DREAMDANCE_ARTIFACTS`` (default ``runs/artifacts``)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make browser)"),
]
FRAMES, SIZE = 5, 64
ARTIFACTS = Path(os.environ.get("DREAMDANCE_ARTIFACTS", "runs/artifacts"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    runs = tmp_path_factory.mktemp("app-runs")
    port = _free_port()
    log = open(runs / "app.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([sys.executable, "-m", "dreamdance.app", "--port", str(port),
                             "--runs", str(runs)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"the app did not start: {(runs / 'app.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def page(app_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1800})
        pg.goto(app_url)
        pg.locator("#run").wait_for()
        yield pg
        browser.close()


def _set_number(page, elem: str, value: int) -> None:
    box = page.locator(f"#{elem} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


def _upload(page, elem: str, path: Path) -> None:
    """Replace the file in a file component: clear it, then choose ``path``."""
    clear = page.locator(f"#{elem} button[aria-label=Clear]")
    if clear.count():
        clear.first.click()
    page.locator(f"#{elem} input[type=file]").set_input_files(str(path))
    page.locator(f"#{elem}").get_by_text(path.name).first.wait_for()


def _status(page) -> str:
    return page.locator("#status").inner_text()


def _wait_status(page, pattern: str, timeout: float = 240) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = _status(page)
        if re.search(pattern, text):
            return text
        time.sleep(0.5)
    raise AssertionError(f"status never matched {pattern!r}; it says {_status(page)!r}")


def _steps(page) -> str:
    return page.locator("textarea").first.input_value()


def test_the_sample_runs_to_an_animation_of_the_requested_length(page, tmp_path):
    from dreamdance.media import read_video

    _set_number(page, "frames", FRAMES)
    _set_number(page, "resolution", SIZE)
    page.locator("#run").click()
    _wait_status(page, r"^Done")
    src = page.locator("#animation video").get_attribute("src")
    assert src, "no video in the page"
    video = tmp_path / "animation.mp4"
    video.write_bytes(page.request.get(src).body())
    assert len(read_video(video).frames) == FRAMES
    for step in ("scene/plate: running", "scene/video: running", "animate/animation: running"):
        assert step in _steps(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)


def test_a_corrupt_image_shows_the_one_line_error(page, tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    _upload(page, "art", bad)
    page.locator("#run").click()
    text = _wait_status(page, r"error")
    assert re.search(r"image=\S*corrupt\.png: not a readable image", text), text
    assert len(text.strip().splitlines()) == 1


def test_cancel_during_the_scene_stage_then_the_next_run_resumes(page):
    from dreamdance import assets

    _upload(page, "art", assets.sample_path(assets.ART))
    _set_number(page, "resolution", SIZE + 16)  # new scene steps: the cache has none
    page.locator("#run").click()
    deadline = time.time() + 120
    while "scene/spiral: running" not in _steps(page):
        assert time.time() < deadline, _steps(page)
        time.sleep(0.2)
    page.locator("#cancel").click()
    _wait_status(page, r"^Cancelled")
    first = _steps(page)
    assert "scene/plate: running" in first and "animate/animation" not in first
    page.locator("#run").click()
    _wait_status(page, r"^Done")
    second = _steps(page)
    assert "scene/plate: unchanged, skipped" in second  # finished before the cancel
    assert "scene/spiral: running" in second  # interrupted: redone
    assert "animate/animation: running" in second

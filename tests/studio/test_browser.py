"""The studio page in a real browser: Debian's chromium, headless, driven through its
chromedriver by selenium. Skips, saying why, where either is missing (CI installs them)."""

import asyncio
import io
import json
import shutil
import socket
import threading
import time
import urllib.request

import mido
import pytest

from structdiff.pipeline.cue import read_cue
from structdiff.studio.server import Studio, make_app
from tests.studio.test_server import FAST_CUE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="needs Debian's chromium and chromium-driver "
                              "(apt-get install chromium chromium-driver)"),
    pytest.mark.usefixtures("one_thread"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    from aiohttp import web

    studio = Studio(read_cue(FAST_CUE.replace("tempo: 400", "tempo: 240"), "fast.yaml"))
    port = _free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(make_app(studio))

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800",
                "--autoplay-policy=no-user-gesture-required", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _wait(predicate, seconds: float = 30.0, what: str = "the page"):
    end = time.time() + seconds
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_the_page_plays_follows_a_state_and_downloads_midi(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    _wait(lambda: browser.find_elements(By.ID, "state-battle"), what="the state buttons")
    assert _errors(browser) == []
    session = browser.execute_script("return S.hello.session")
    browser.find_element(By.ID, "play").click()
    _wait(lambda: browser.find_element(By.ID, "now-bar").text not in ("", "–"),
          what="the first bar")
    browser.find_element(By.ID, "state-battle").click()

    def bars():
        with urllib.request.urlopen(f"{server}/api/sessions/{session}/bars") as r:
            return json.load(r)["bars"]

    rows = _wait(lambda: (b := bars()) and b[-1]["state"] == "battle" and b, 30,
                 "a bar of the pressed state")
    assert rows[0]["state"] == "calm"
    _wait(lambda: browser.find_element(By.ID, "now-state").text == "battle", 10,
          "the page to show the new state")
    assert "current" in browser.find_element(By.ID, "state-battle").get_attribute("class")
    href = browser.find_element(By.ID, "dl-midi").get_attribute("href")
    assert href.endswith(f"/api/sessions/{session}/song.mid")
    with urllib.request.urlopen(href) as r:
        midi = mido.MidiFile(file=io.BytesIO(r.read()))
    assert any(m.type == "note_on" for t in midi.tracks for m in t)
    audio = browser.find_element(By.ID, "audio").text
    assert audio.startswith("audio: ") and "off" not in audio
    browser.save_screenshot(str(tmp_path / "studio.png"))
    browser.find_element(By.ID, "stop").click()
    assert _errors(browser) == []

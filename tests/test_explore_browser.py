"""The explorer in a real browser: headless Chromium driven by Selenium opens the session's site
(tiny model, `explorer_site` in conftest.py) from disk, with no server and no network.

On the index, a layer page and six unit pages it checks that every image loaded
(naturalWidth > 0), every link points to a file of the site, the console shows no errors, the
jump box finds units (and says so when it cannot), sorting reorders the tiles, and the arrow
keys move between units. Screenshots of the index and a unit page go to the test's tmp dir.

Skipped, saying why, where Selenium or Chromium is missing; `.ci/run` installs Debian's
`chromium` and `chromium-driver` when they are missing, so CI always runs it.
"""

import json
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from analysis.explore.draw import CHROMIUM_FLAGS as FLAGS  # the flags `make bench` uses too

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (it is in requirements.txt)"
    if not CHROMIUM or not DRIVER:
        return ("no headless browser: install Debian's chromium and chromium-driver "
                "(apt-get install -y chromium chromium-driver; .ci/run does this)")
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="explorer-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def open_page(browser, site: Path, name: str):
    browser.get((site / f"{name}.html").as_uri())
    wait_for_page(browser, name)  # get() has been seen to return with the page still loading


def check_page(browser, site: Path) -> int:
    """Images loaded, links local and existing, no console errors; returns the image count."""
    page = unquote(urlparse(browser.current_url).path)
    images = browser.execute_script(
        "return [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    assert images, f"{page}: no images"
    broken = [src for src, complete, width in images if not complete or width == 0]
    assert not broken, f"{page}: images not loaded: {broken[:5]}"
    for href in browser.execute_script("return [...document.links].map(a => a.href)"):
        url = urlparse(href)
        assert url.scheme == "file", f"{page}: link leaves the site: {href}"
        target = Path(unquote(url.path))
        assert target.is_file() and site in target.parents, f"{page}: broken link {href}"
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"{page}: console errors: {errors}"
    return len(images)


def full_screenshot(browser, path: Path):
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(height + 40, 6000))
    browser.save_screenshot(str(path))
    browser.set_window_size(1200, 900)
    assert path.stat().st_size > 10_000


def jump(browser, text: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = browser.find_element(By.CSS_SELECTOR, "form.jump input")
    box.clear()
    box.send_keys(text + Keys.ENTER)


def wait_for_page(browser, name: str):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith(f"/{name}.html") and
                                     b.execute_script("return document.readyState") == "complete")


def test_index_layer_and_unit_pages_work_in_chromium(browser, explorer_site, tmp_path):
    from selenium.webdriver.common.by import By

    site = explorer_site.resolve()
    open_page(browser, site, "index")
    assert check_page(browser, site) == 5  # one OIP mosaic per layer
    full_screenshot(browser, tmp_path / "index.png")

    # The jump box: a loose spelling finds the unit; an unknown name says so and stays.
    jump(browser, "Conv3 48")
    wait_for_page(browser, "conv_3-48")
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("conv_3-48")
    check_page(browser, site)
    full_screenshot(browser, tmp_path / "conv_3-48.png")
    open_page(browser, site, "index")
    jump(browser, "conv_9-1")
    message = browser.find_element(By.CSS_SELECTOR, ".jump-msg").text
    assert "no unit" in message and browser.current_url.endswith("/index.html")
    jump(browser, "dense_1")  # a layer name opens the layer page
    wait_for_page(browser, "dense_1")

    # A layer page: every tile's OIP loads; sorting reorders the tiles.
    open_page(browser, site, "conv_3")
    assert check_page(browser, site) == 128
    tiles = "return [...document.querySelectorAll('#tiles .tile')].map(t => t.dataset)"
    browser.find_element(By.CSS_SELECTOR, "button[data-sort=sel]").click()
    sel = [float(d["sel"]) for d in browser.execute_script(tiles)]
    assert len(sel) == 128 and sel == sorted(sel, reverse=True)
    browser.find_element(By.CSS_SELECTOR, "button[data-sort=max]").click()
    largest = [float(d["max"]) for d in browser.execute_script(tiles)]
    assert largest == sorted(largest, reverse=True)
    browser.find_element(By.CSS_SELECTOR, "button[data-sort=effect]").click()
    effect = [(float(d["acc"]), float(d["p"])) for d in browser.execute_script(tiles)]
    assert effect == sorted(effect)
    assert browser.current_url.endswith("#sort=effect")

    # Unit pages of every layer, a dead unit where there is one, and the arrow keys.
    names = ["conv_1-0", "conv_2-5", "dense_1-3", "output-9"]
    dead = [p.stem for p in sorted(site.glob("conv_3-*.json")) if json.loads(p.read_text())["dead"]]
    names += dead[:1] or ["conv_3-0"]
    for name in names:
        open_page(browser, site, name)
        assert check_page(browser, site) >= 2
        assert browser.find_element(By.ID, "causal").is_displayed()
    open_page(browser, site, "conv_2-5")
    browser.find_element(By.TAG_NAME, "body").send_keys("\ue014")  # ArrowRight
    wait_for_page(browser, "conv_2-6")
    check_page(browser, site)

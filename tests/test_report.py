"""`pybuild report`: one self-contained page, rendered in a real headless Chromium (Debian's
chromium and chromium-driver, driven by selenium): it shows the score and every layer, and a
click on a layer shows that layer's files.  Nothing may be fetched: the page says so itself
(a Content-Security-Policy of default-src 'none') and the browser saw no resource load."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from analysisfixtures import docker_archive, layer_tar
from conftest import pybuild
from dockerd import require_tool

LAYERS = [layer_tar([("etc", None, 0o755), ("etc/os-release", "ID=test\n" * 40, 0o644), ("bin", None, 0o755),
                     ("bin/tool", b"\x7fELF" + bytes(2000), 0o755)]),
          layer_tar([("etc", None, 0o755), ("etc/os-release", "ID=test\n" * 40, 0o600)]),
          layer_tar([("data", None, 0o755), ("data/blob", b"x" * 5000, 0o644), ("data/copy", b"x" * 5000, 0o644)]),
          layer_tar([("bin", None, 0o755), ("bin/.wh.tool", b"", 0o600)])]
COMMANDS = ["ADD base /", "chmod 600 /etc/os-release", "COPY data /data", "rm /bin/tool"]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    archive = docker_archive(tmp / "img.tar", LAYERS, COMMANDS, compression="gzip")
    out = tmp / "img.html"
    pybuild("report", f"docker-archive:{archive}", "-o", str(out), root=tmp / "store")
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator:
    # start-up: selenium only for this module
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    opts = Options()
    opts.binary_location = require_tool("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000"):
        opts.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    opts.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(require_tool("chromedriver")), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_is_self_contained(page) -> None:
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", text, re.I)
    assert "url(" not in text and "@import" not in text and "<link" not in text
    assert "default-src 'none'" in text


def test_the_page_renders_every_layer_and_a_click_shows_its_files(page, browser, tmp_path) -> None:
    # start-up: selenium only for this module
    from selenium.webdriver.common.by import By
    browser.get(page.as_uri())
    assert browser.find_element(By.ID, "efficiency").text == "81.62 %"   # (12644 - 320 - 2004) / 12644
    layers = browser.find_elements(By.CSS_SELECTOR, "#layers [data-layer-index]")
    assert sorted(int(el.get_attribute("data-layer-index")) for el in layers) == [0, 1, 2, 3]
    assert all(el.is_displayed() for el in layers)
    assert "chmod 600 /etc/os-release" in layers[2].text                     # top first: 3, 2, 1, 0
    tree = browser.find_element(By.ID, "tree")
    assert tree.get_attribute("data-layer-index") == "3"                     # the top is shown first
    assert "tool" in tree.text and "whiteout" in tree.text

    browser.find_element(By.CSS_SELECTOR, '#layers [data-layer-index="2"]').click()
    tree = browser.find_element(By.ID, "tree")
    assert tree.get_attribute("data-layer-index") == "2"
    assert "blob" in tree.text and "copy" in tree.text and "added" in tree.text
    assert "os-release" not in tree.text

    browser.find_element(By.CSS_SELECTOR, '#layers [data-layer-index="1"]').click()
    tree = browser.find_element(By.ID, "tree")
    assert "os-release" in tree.text and "modified" in tree.text
    assert "/etc/os-release" in browser.find_element(By.ID, "wasted").text
    assert "metadata-only" in browser.find_element(By.ID, "wasted").text
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

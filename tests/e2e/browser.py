"""Headless Chromium for the dashboard's browser tests: Debian's ``chromium`` and ``chromium-driver``
driven by Selenium, offline (no Selenium Manager, no component updates, no sync, no background traffic),
and a PNG decoder (standard library only) to tell a screenshot that shows something from a blank one."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from statistics import pvariance
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)",
)
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-dev-shm-usage", "--disable-extensions", "--no-first-run",
    "--disable-default-apps", "--disable-domain-reliability", "--no-pings", "--window-size=1400,1000",
    # Anything not on loopback (which Chromium never sends through a proxy) goes to a port nobody serves.
    "--proxy-server=http://127.0.0.1:9",
)
PAGE_LOAD_TIMEOUT = 10.0  # seconds: a page that takes longer fails the test instead of hanging it


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium session (a ``selenium.webdriver.Chrome``), quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Both paths are given, so Selenium Manager has nothing to find; offline, it could not download anyway.
    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def follow(driver: Any, element: Any) -> None:
    """Click ``element`` and wait until the page it leads to has replaced this one. A click returns
    before the browser has navigated (a form post especially): reading the URL straight after it races
    the navigation."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    old = driver.find_element("tag name", "html")
    element.click()
    WebDriverWait(driver, PAGE_LOAD_TIMEOUT).until(expected_conditions.staleness_of(old))


def png_pixels(png: bytes) -> tuple[int, int, list[int]]:
    """(width, height, grey levels 0-255 of every 8th pixel of every 4th row) of an 8-bit RGB(A) PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, data, header = 8, b"", b""
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        chunk = png[at + 8:at + 8 + length]
        header = chunk if kind == b"IHDR" else header
        data += chunk if kind == b"IDAT" else b""
        at += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, "only 8-bit RGB(A), not interlaced"
    size = 4 if colour == 6 else 3
    rows = _unfiltered(zlib.decompress(data), width * size, height, size)
    grey = [
        (rows[y][x] * 299 + rows[y][x + 1] * 587 + rows[y][x + 2] * 114) // 1000
        for y in range(0, height, 4) for x in range(0, width * size, 8 * size)
    ]
    return width, height, grey


def _unfiltered(raw: bytes, stride: int, height: int, size: int) -> list[bytearray]:
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind in (1, 3, 4):
            for i in range(stride):
                left = line[i - size] if i >= size else 0
                up, corner = previous[i], previous[i - size] if i >= size else 0
                if kind == 1:
                    line[i] = (line[i] + left) & 0xFF
                elif kind == 3:
                    line[i] = (line[i] + (left + up) // 2) & 0xFF
                else:
                    line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
        rows.append(line)
        previous = line
    return rows


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def looks_blank(png: bytes) -> tuple[bool, str]:
    """Whether a screenshot shows (next to) nothing: one colour, or almost no variation."""
    width, height, grey = png_pixels(png)
    variance, levels = pvariance(grey), len(set(grey))
    dark = sum(1 for g in grey if g < 128) / len(grey)
    summary = f"{width}x{height}, grey variance {variance:.0f}, {levels} levels, {dark:.1%} dark"
    return variance < 100 or levels < 8 or dark < 0.005, summary

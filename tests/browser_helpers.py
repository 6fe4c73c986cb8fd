"""The console in a real browser: the gateway and the services it calls on a
test's own vhost, and headless Chromium from Debian driven by selenium.

- :func:`start_console` runs identity, intake, review (and whatever else a
  test names) and the gateway on the test's config, the gateway on a free
  port of 127.0.0.1; it answers the console's base URL.
- :func:`chromium` starts one headless Chromium (``/usr/bin/chromium`` with
  ``/usr/bin/chromedriver``, a fresh profile) — the ``browser`` fixture in
  tests/conftest.py keeps one per test session; :func:`fresh` clears its
  cookies between tests.
- :class:`Console` is what a test does on the pages: log in with password
  and one-time code, open a page, read it, take a screenshot into
  docs/console/.

Skips (with the install line) when Chromium or its driver is missing:
``make sysdeps`` installs both (DEB_PACKAGES).
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--lang=zh-CN")
#: where the screenshots go: var/screenshots/ (a test run leaves the tree clean), or
#: DIBAO_SCREENSHOTS_DIR — `make screenshots` retakes docs/console/ (docs/console.md shows them)
SCREENSHOTS = Path(os.environ.get("DIBAO_SCREENSHOTS_DIR") or Path(__file__).resolve().parents[1] / "var" / "screenshots")
#: a phone's width (the console must be usable at 375 px)
PHONE = (375, 812)
DESKTOP = (1280, 900)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_console(container_factory, config: dict, extra=()) -> tuple[dict, str]:
    """(the config, the console's base URL) with identity, intake, review,
    ``extra`` services and the gateway running."""
    from services.gateway.service import GatewayService
    from services.identity.service import IdentityService
    from services.intake.service import IntakeService
    from services.review.service import ReviewService
    from tests.identity_helpers import with_secrets

    with_secrets(config)
    port = free_port()
    config = dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", WEB_SESSION_TOUCH_SECONDS=60)
    for cls in (IdentityService, IntakeService, ReviewService, *extra, GatewayService):
        container_factory(cls, config).start()
    return config, f"http://127.0.0.1:{port}"


def chromium():
    """A headless Chromium with a fresh profile (its directory removed on quit)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Chromium is not installed: apt-get install chromium chromium-driver (make sysdeps)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dibao-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.dibao_profile = profile
    return driver


def quit_browser(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(getattr(driver, "dibao_profile", ""), ignore_errors=True)


class Console:
    """A test's hands on the console pages."""

    def __init__(self, driver, base_url: str):
        self.driver = driver
        self.base = base_url

    def open(self, path: str):
        self.driver.get(self.base + path)
        return self

    @property
    def path(self) -> str:
        url = self.driver.current_url
        return url[len(self.base):] if url.startswith(self.base) else url

    def text(self, css: str = "main") -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, css: str, value: str):
        field = self.find(css)
        field.clear()
        field.send_keys(value)
        return self

    def submit(self, css: str, timeout: float = 20.0):
        """Click a form's button and wait until the browser has left the page
        (the console has no script: every form posts and the server answers
        with a new page): a ``wait_path`` for the same path as before, or a
        ``find`` right after, then sees the answer and not the old page."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        page = self.driver.find_element(By.TAG_NAME, "html")
        self.find(css).click()
        WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
            lambda driver: _gone(page), f"{css}: the page did not change within {timeout} s")
        return self

    def wait_path(self, predicate, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while not predicate(self.path):
            assert time.monotonic() < deadline, f"still on {self.path} after {timeout} s"
            time.sleep(0.05)
        return self.path

    def login(self, user: str, password: str, otp: str):
        self.open("/login")
        self.fill("#user", user).fill("#password", password).fill("#otp", otp).submit("#login")
        self.wait_path(lambda p: not p.startswith("/login"))
        return self

    def logout(self):
        self.submit("#logout")
        self.wait_path(lambda p: p.startswith("/login"))
        return self

    def screenshot(self, name: str, size=PHONE) -> Path:
        """<SCREENSHOTS>/<name>.png at ``size`` (a phone's width by default), the whole page's height."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        width, height = size
        self.driver.set_window_size(width, height)
        full = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(width, max(height, min(int(full) + 140, 2400)))
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(*DESKTOP)
        return path


def _gone(element) -> bool:
    """Whether ``element`` has left the document: stale, or (asked while the next page
    replaces it) "Node with given id does not belong to the document"."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in (error.msg or ""):
            return True
        raise


def fresh(driver, base_url: str) -> Console:
    """The session's browser with no cookie of an earlier test (on this origin)."""
    driver.get(base_url + "/healthz")
    driver.delete_all_cookies()
    return Console(driver, base_url)

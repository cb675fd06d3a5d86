"""The dashboard as a user meets it: the real `queuectl dashboard` in a subprocess on
a free port against a real store, read over HTTP and in headless Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import pytest

from tests.conftest import run_cli, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class Dashboard:
    proc: subprocess.Popen[str]
    db: str
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        first = self.lines[0]
        return first.split(" on ", 1)[1].split(" ", 1)[0].rstrip("/")

    def request(self, path: str, *, method: str = "GET", data: Optional[bytes] = None,
                headers: Optional[dict[str, str]] = None) -> Reply:
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with _OPENER.open(req, timeout=30) as resp:
                return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()},
                             resp.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()},
                         exc.read())

    def get(self, path: str, **headers: str) -> Reply:
        return self.request(path, headers=headers)

    def post(self, path: str, form: dict[str, str], **headers: str) -> Reply:
        from urllib.parse import urlencode

        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return self.request(path, method="POST", data=urlencode(form).encode(),
                            headers=headers)

    def csrf(self, page_path: str = "/dlq") -> str:
        """The CSRF token from a form of the page (from its meta tag when it has none)."""
        page = self.get(page_path).text
        for marker in ('name="csrf" value="', 'name="csrf-token" content="'):
            if marker in page:
                return page.split(marker, 1)[1].split('"', 1)[0]
        raise AssertionError(f"no CSRF token on {page_path}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, db=self.db)

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _pump(stream: Any, into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


def start_dashboard(db: str, *args: str) -> Dashboard:
    """`queuectl --db DB dashboard --port 0 ARGS`, once it prints its address."""
    argv = [sys.executable, "-m", "queuectl", "--db", db, "dashboard", "--port", "0", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    dash = Dashboard(proc, db)
    for stream, into in ((proc.stdout, dash.lines), (proc.stderr, dash.errors)):
        threading.Thread(target=_pump, args=(stream, into), daemon=True).start()
    try:
        wait_for(lambda: dash.lines or proc.poll() is not None, timeout=30,
                 message="the dashboard to print its address")
        if not dash.lines:
            raise AssertionError(f"the dashboard exited: {dash.errors}")
    except BaseException:
        dash.stop()
        raise
    return dash


@pytest.fixture
def dashboard_factory() -> Iterator[Callable[..., Dashboard]]:
    started: list[Dashboard] = []

    def start(db: str, *args: str) -> Dashboard:
        dash = start_dashboard(db, *args)
        started.append(dash)
        return dash

    yield start
    for dash in started:
        dash.stop()


@pytest.fixture
def dashboard(store_url: str, dashboard_factory: Callable[..., Dashboard]) -> Dashboard:
    """The dashboard over a fresh store (SQLite and PostgreSQL)."""
    return dashboard_factory(store_url)


@pytest.fixture
def sqlite_dashboard(sqlite_url: str, dashboard_factory: Callable[..., Dashboard]
                     ) -> Dashboard:
    return dashboard_factory(sqlite_url)


@pytest.fixture(scope="module")
def browser_session() -> Iterator[Any]:
    """One headless Chromium (Debian's build, driven by chromedriver) per module."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed "
                    "(apt-get install chromium chromium-driver; .ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("unhandledPromptBehavior", "ignore")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(browser_session: Any) -> Iterator[Any]:
    yield browser_session
    try:
        browser_session.get("about:blank")
        browser_session.delete_all_cookies()
    except Exception:  # noqa: BLE001 - a page may have left a dialog open; clear it
        from selenium.common.exceptions import NoAlertPresentException

        try:
            browser_session.switch_to.alert.dismiss()
        except NoAlertPresentException:
            pass

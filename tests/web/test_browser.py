"""The dashboard in a real browser (Debian's headless Chromium through chromedriver):
live updates, live output, the DLQ button, escaping."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.web.conftest import Dashboard

SCRIPT_COMMAND = "<script>alert(1)</script>"
IMG_OUTPUT = '"><img src=x onerror=alert(1)>'


def counts_on_page(browser: Any) -> dict[str, int]:
    return {el.get_attribute("data-count"): int(el.text)
            for el in browser.find_elements(By.CSS_SELECTOR, "[data-count]")}


def open_live_overview(browser: Any, dash: Dashboard) -> None:
    browser.get(dash.url + "/")
    WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.ID, "live").text == "live")


@pytest.fixture
def worker(sqlite_url: str) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "queuectl", "--db", sqlite_url,
                                 "worker", "start", "--count", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_overview_counts_equal_status_json(dashboard: Dashboard, browser: Any) -> None:
    dashboard.cli("enqueue", "--id", "done1", "true")
    dashboard.cli("enqueue", "--id", "dead1", "--max-retries", "0", "exit 1")
    assert dashboard.cli("worker", "start", "--burst").returncode == 0
    dashboard.cli("enqueue", "--id", "wait1", "true")
    dashboard.cli("enqueue", "--id", "later1", "--delay", "1h", "true")
    dashboard.cli("cancel", "wait1")
    dashboard.cli("enqueue", "--id", "wait2", "true")
    open_live_overview(browser, dashboard)
    status = dashboard.cli_json("status")
    assert counts_on_page(browser) == status["counts"]
    assert int(browser.find_element(By.CSS_SELECTOR, '[data-field="total"]').text) == \
        status["total"]


def test_a_job_enqueued_from_the_cli_shows_without_a_reload(
        dashboard: Dashboard, browser: Any) -> None:
    dashboard.cli("enqueue", "--id", "first", "true")
    open_live_overview(browser, dashboard)
    assert counts_on_page(browser)["pending"] == 1
    browser.execute_script("window.__same_page = true;")
    assert dashboard.cli("enqueue", "--id", "second-job", "echo new").returncode == 0
    enqueued = time.monotonic()
    WebDriverWait(browser, 2).until(lambda b: counts_on_page(b)["pending"] == 2)
    WebDriverWait(browser, 2).until(lambda b: b.find_elements(By.LINK_TEXT, "second-job"))
    assert time.monotonic() - enqueued < 2
    assert browser.execute_script("return window.__same_page === true;")  # no reload


def test_a_running_jobs_output_appears_while_it_runs(
        sqlite_dashboard: Dashboard, browser: Any, worker: Callable[[], Any],
        tmp_path: Path) -> None:
    dash = sqlite_dashboard
    gate = tmp_path / "gate"
    worker()
    job_id = dash.cli_json(
        "enqueue", f"echo first-line; while [ ! -e {gate} ]; do sleep 0.05; done; "
                   "echo second-line")["id"]
    browser.get(f"{dash.url}/jobs/{job_id}")
    output = browser.find_element(By.ID, "output")
    WebDriverWait(browser, 15).until(lambda b: "first-line" in output.text)
    assert dash.cli_json("show", job_id)["state"] == "processing"  # the gate holds it
    assert "second-line" not in output.text
    gate.touch()
    WebDriverWait(browser, 15).until(lambda b: output.get_attribute("data-ended"))
    assert output.get_attribute("data-ended") == "completed"
    assert output.text.splitlines() == ["first-line", "second-line"]
    assert browser.find_element(By.ID, "job-state").text == "completed"


def test_the_dlq_retry_button_moves_a_dead_job_to_pending(
        dashboard: Dashboard, browser: Any) -> None:
    dashboard.cli("enqueue", "--id", "deadjob", "--max-retries", "0", "exit 7")
    dashboard.cli("enqueue", "--id", "deadtoo", "--max-retries", "0", "exit 8")
    assert dashboard.cli("worker", "start", "--burst").returncode == 0
    assert dashboard.cli_json("show", "deadjob")["state"] == "dead"
    browser.get(dashboard.url + "/dlq")
    browser.find_element(By.CSS_SELECTOR, 'tr[data-job="deadjob"] button.retry').click()
    WebDriverWait(browser, 10).until(lambda b: "note=" in b.current_url)
    assert "deadjob moved to pending" in browser.find_element(By.CLASS_NAME, "note").text
    assert dashboard.cli_json("show", "deadjob")["state"] == "pending"
    assert dashboard.cli_json("show", "deadtoo")["state"] == "dead"
    assert not browser.find_elements(By.CSS_SELECTOR, 'tr[data-job="deadjob"]')


def assert_inert(browser: Any) -> None:
    """No dialog opened, no element injected: the payloads are text."""
    try:
        text = browser.switch_to.alert.text
    except NoAlertPresentException:
        pass
    else:
        raise AssertionError(f"a dialog opened: {text!r}")
    assert browser.find_elements(By.TAG_NAME, "img") == []
    sources = [s.get_attribute("src") for s in browser.find_elements(By.TAG_NAME, "script")]
    assert all(src and "/static/" in src for src in sources), sources


def test_xss_payloads_render_as_text(sqlite_dashboard: Dashboard, browser: Any) -> None:
    dash = sqlite_dashboard
    printed = dash.cli_json("enqueue", "--id", "imgjob", f"printf '%s\\n' '{IMG_OUTPUT}'")
    assert dash.cli("worker", "start", "--burst").returncode == 0
    assert dash.cli_json("show", printed["id"])["output"] == IMG_OUTPUT + "\n"
    dash.cli_json("enqueue", "--id", "scriptjob", SCRIPT_COMMAND)
    open_live_overview(browser, dash)  # the overview's rows are drawn by its script
    assert_inert(browser)
    latest = browser.find_element(By.ID, "latest").text
    assert SCRIPT_COMMAND in latest and IMG_OUTPUT in latest
    for path in ("/jobs", "/jobs?q=%3Cscript", "/jobs/scriptjob", "/jobs/imgjob"):
        browser.get(dash.url + path)
        assert_inert(browser)
    assert browser.find_element(By.ID, "output").text == IMG_OUTPUT
    browser.get(dash.url + "/jobs/scriptjob")
    assert browser.find_element(By.ID, "job-command").text == SCRIPT_COMMAND


def test_the_token_in_the_address_becomes_an_httponly_cookie(
        sqlite_url: str, dashboard_factory: Callable[..., Dashboard], browser: Any) -> None:
    dash = dashboard_factory(sqlite_url, "--token", "s3cret-token")
    browser.get(dash.url + "/workers")
    assert "token is required" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(dash.url + "/workers?token=s3cret-token")
    WebDriverWait(browser, 10).until(lambda b: b.title.startswith("Workers"))
    assert "token" not in browser.current_url
    assert browser.execute_script("return document.cookie;") == ""  # HttpOnly
    open_live_overview(browser, dash)  # the cookie also carries the live stream

"""Make docs/dashboard.png: the overview of a small store with a bit of everything,
taken in Debian's headless Chromium (apt-get install chromium chromium-driver).

    .venv/bin/python scripts/screenshot.py [OUT.png]

Everything happens in a temporary HOME and store; nothing of yours is touched."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = [
    ["--id", "report-daily", "--priority", "8", "echo building report; sleep 0.2"],
    ["--id", "resize-images", "--queue", "media", "echo resized 42 images"],
    ["--id", "send-newsletter", "--queue", "mail", "echo sent"],
    ["--id", "flaky-upload", "--max-retries", "0", "echo 'upload: connection reset' >&2; exit 1"],
    ["--id", "sync-crm", "--max-retries", "0", "echo 'token expired' >&2; exit 4"],
    ["--id", "backup-db", "--queue", "ops", "echo backup done"],
]
LATER = [
    ["--id", "nightly-vacuum", "--run-at", "+6h", "--queue", "ops", "echo vacuum"],
    ["--id", "export-csv", "echo export"],
    ["--id", "thumbnails", "--queue", "media", "echo thumbs"],
]


def main() -> int:
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                          os.path.join(ROOT, "docs", "dashboard.png"))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUECTL_")}
        env.update(HOME=tmp, XDG_DATA_HOME=os.path.join(tmp, "data"),
                   XDG_RUNTIME_DIR=os.path.join(tmp, "run"))
        os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
        db = os.path.join(tmp, "queue.db")
        cli = [sys.executable, "-m", "queuectl", "--db", db]

        def run(*args: str) -> None:
            subprocess.run([*cli, *args], env=env, check=True, capture_output=True)

        for spec in JOBS:
            run("enqueue", *spec)
        run("worker", "start", "--burst", "--count", "2")
        for spec in LATER:
            run("enqueue", *spec)
        worker = subprocess.Popen([*cli, "worker", "start", "--count", "2", "--queue", "ops"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dash = subprocess.Popen([*cli, "dashboard", "--port", "0"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    "--hide-scrollbars"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            assert dash.stdout is not None
            url = dash.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
            run("enqueue", "--id", "long-render", "--queue", "ops", "sleep 30")
            driver.get(url)
            WebDriverWait(driver, 20).until(
                lambda d: d.find_element(By.ID, "live").text == "live"
                and d.find_element(By.CSS_SELECTOR, '[data-field="busy_slots"]').text == "1")
            time.sleep(0.5)  # let the chart's canvas paint (a picture, not a test)
            driver.save_screenshot(out)
        finally:
            driver.quit()
            dash.terminate()
            subprocess.run([*cli, "worker", "stop", "--now"], env=env, capture_output=True)
            for proc in (dash, worker):
                try:
                    proc.wait(timeout=35)
                except subprocess.TimeoutExpired:
                    proc.kill()
            if dash.stdout is not None:
                dash.stdout.close()
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

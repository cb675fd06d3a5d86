"""The dashboard over plain HTTP: /api shapes, /healthz, /metrics, security rules,
hostile requests.  Against both stores."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import pytest

from tests.conftest import run_cli, wait_for
from tests.web.conftest import Dashboard

VOLATILE_STATUS = {"workers", "oldest_pending_age_s"}


def seed(dash: Dashboard) -> dict[str, str]:
    """A store with a completed, a dead and a pending job."""
    ok = dash.cli_json("enqueue", "--id", "okjob", "echo fine")["id"]
    bad = dash.cli_json("enqueue", "--id", "badjob", "--max-retries", "0", "exit 3")["id"]
    done = dash.cli("worker", "start", "--burst")
    assert done.returncode == 0, done.stderr
    waiting = dash.cli_json("enqueue", "--id", "waitjob", "--queue", "mail", "sleep 1")["id"]
    return {"ok": ok, "bad": bad, "waiting": waiting}


def snapshot(dash: Dashboard) -> Any:
    jobs = dash.cli_json("list", "--limit", "1000")
    status = dash.cli_json("status")
    return jobs, status["counts"], dash.cli_json("config")


def test_api_has_the_cli_json_shapes(dashboard: Dashboard) -> None:
    ids = seed(dashboard)
    status = dashboard.get("/api/status").json()
    cli_status = dashboard.cli_json("status")
    assert {k: v for k, v in status.items() if k not in VOLATILE_STATUS} == \
        {k: v for k, v in cli_status.items() if k not in VOLATILE_STATUS}
    assert status["counts"]["completed"] == 1 and status["counts"]["dead"] == 1
    assert dashboard.get("/api/jobs").json() == dashboard.cli_json("list")
    assert dashboard.get("/api/jobs?state=dead").json() == \
        dashboard.cli_json("list", "--state", "dead")
    assert dashboard.get("/api/jobs?queue=mail").json() == \
        dashboard.cli_json("list", "--queue", "mail")
    assert dashboard.get(f"/api/jobs/{ids['ok']}").json() == \
        dashboard.cli_json("show", ids["ok"])
    assert dashboard.get("/api/dlq").json() == dashboard.cli_json("dlq", "list")
    assert dashboard.get("/api/config").json() == dashboard.cli_json("config")
    workers = dashboard.get("/api/workers").json()
    assert set(workers) == {"workers"} and all("alive" in w for w in workers["workers"])
    assert dashboard.get(f"/api/jobs/{ids['ok']}/output").text == "fine\n"


def test_the_overview_figures_are_those_of_metrics(dashboard: Dashboard) -> None:
    seed(dashboard)
    counts = dashboard.cli_json("status")["counts"]
    # the overview is a shared snapshot at most a poll old
    overview = wait_for(lambda: (lambda o: o if o["status"]["counts"] == counts else None)(
        dashboard.get("/api/overview").json()), timeout=5)
    overall = dashboard.cli_json("metrics")["overall"]
    figures = overview["figures"]
    assert figures["source"] == "store" and figures["window_s"] == 3600
    assert figures["success_rate"] == overall["success_rate"] == 0.5
    assert figures["duration_p95_s"] == overall["duration_s"]["p95"]
    assert figures["runs"] == overall["runs"]
    points = figures["throughput_per_min"]
    assert len(points) == 60 and sum(n for _, n in points) == 2  # 1-minute buckets
    assert [rate for _, rate in figures["success_rate_series"]] in ([0.5], [1.0, 0.0],
                                                                     [0.0, 1.0])


def test_jobs_api_pages_by_keyset(dashboard: Dashboard) -> None:
    lines = "\n".join(f'{{"id":"page{i:02d}","command":"echo {i}"}}' for i in range(25))
    done = run_cli("enqueue", "--file", "-", db=dashboard.db, input=lines)
    assert done.returncode == 0, done.stderr
    seen: list[str] = []
    path = "/api/jobs?limit=10"
    while True:
        reply = dashboard.get(path)
        assert reply.status == 200
        seen += [job["id"] for job in reply.json()]
        if "link" not in reply.headers:
            break
        path = reply.headers["link"].split(">", 1)[0].lstrip("<")
    assert seen == [f"page{i:02d}" for i in reversed(range(25))]
    found = dashboard.get("/api/jobs?q=echo%201").json()
    assert [j["id"] for j in found] == ["page19", "page18", "page17", "page16", "page15",
                                        "page14", "page13", "page12", "page11", "page10",
                                        "page01"]
    assert [j["id"] for j in dashboard.get("/api/jobs?id=page0").json()] == \
        [f"page0{i}" for i in reversed(range(10))]


def test_healthz_and_metrics_read_the_store(dashboard: Dashboard) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    seed(dashboard)
    health = dashboard.get("/healthz")
    assert health.status == 200 and health.json()["ok"] is True
    assert health.headers["server-timing"].startswith("app;dur=")
    assert "script-src 'self'" in health.headers["content-security-policy"]
    reply = dashboard.get("/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(reply.text)
               for s in family.samples}
    counts = dashboard.cli_json("status")["counts"]
    for state, n in counts.items():
        assert samples[("queuectl_jobs", (("state", state),))] == n
    assert samples[("queuectl_workers", ())] == 0
    assert samples[("queuectl_busy_slots", ())] == 0


def test_post_without_csrf_is_refused_and_changes_nothing(dashboard: Dashboard) -> None:
    ids = seed(dashboard)
    before = snapshot(dashboard)
    for path, form in ((f"/dlq/{ids['bad']}/retry", {}), ("/dlq/retry-all", {}),
                       ("/dlq/purge", {"confirm": "yes"}), (f"/jobs/{ids['waiting']}/cancel", {}),
                       (f"/dlq/{ids['bad']}/retry", {"csrf": "wrong"})):
        reply = dashboard.post(path, form)
        assert reply.status == 403, (path, reply.status, reply.text)
    assert snapshot(dashboard) == before
    reply = dashboard.post(f"/dlq/{ids['bad']}/retry", {"csrf": dashboard.csrf()})
    assert reply.status == 303
    assert dashboard.cli_json("show", ids["bad"])["state"] == "pending"


def test_purge_needs_its_confirmation(dashboard: Dashboard) -> None:
    seed(dashboard)
    csrf = dashboard.csrf()
    assert "Yes, delete 1 job(s)" in dashboard.get("/dlq/purge").text  # GET only asks
    assert dashboard.cli_json("status")["counts"]["dead"] == 1
    assert dashboard.post("/dlq/purge", {"csrf": csrf}).status == 400
    assert dashboard.cli_json("status")["counts"]["dead"] == 1
    assert dashboard.post("/dlq/purge", {"csrf": csrf, "confirm": "yes"}).status == 303
    assert dashboard.cli_json("status")["counts"]["dead"] == 0


HOSTILE = [
    "/nope", "/jobs/nope", "/jobs/%00", "/jobs/..%2F..%2Fetc", "/jobs/" + "x" * 5000,
    "/jobs?state=%3Cscript%3E", "/jobs?before=abc", "/jobs?before=-1", "/jobs?limit=0",
    "/jobs?limit=99999999999999999999", "/jobs?q=%00",
    "/jobs?queue=a%00b", "/api/jobs?id=abcd%00",
    "/api/jobs?before=1e9", "/api/jobs?state=dead&state=zzz", "/api/jobs/%ff",
    "/api/jobs/nope/output", "/api/jobs/okj", "/api/dlq?limit=x", "/events/jobs/nope",
    "/static/../app.py", "/static/%2e%2e/app.py", "/jobs/okjob/cancel", "/dlq/retry-all",
]


def test_get_changes_nothing_and_hostile_requests_get_a_clean_4xx(
        dashboard: Dashboard) -> None:
    seed(dashboard)
    before = snapshot(dashboard)
    for path in ["/", "/jobs", "/jobs/okjob", "/jobs/badjob", "/dlq", "/dlq/purge",
                 "/workers", "/config", "/api/status", "/api/overview", "/api/jobs",
                 "/api/dlq", "/api/workers", "/api/config", "/healthz", "/metrics"]:
        reply = dashboard.get(path)
        assert reply.status == 200, (path, reply.status, reply.text)
    for path in HOSTILE:
        reply = dashboard.get(path)
        assert 400 <= reply.status < 500, (path, reply.status, reply.text)
        assert "Traceback" not in reply.text and "File \"" not in reply.text
    # undecodable bytes are read as U+FFFD: a search that matches nothing
    assert dashboard.get("/api/jobs?q=%ff%fe").json() == []
    reply = dashboard.get("/", Host="evil.example")
    assert reply.status == 421
    assert snapshot(dashboard) == before
    assert not [line for line in dashboard.errors if "Traceback" in line]


def test_a_non_loopback_bind_without_a_token_refuses_to_start(sqlite_url: str) -> None:
    done = run_cli("dashboard", "--host", "0.0.0.0", "--port", "0", db=sqlite_url,
                   timeout=30)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "without a token" in done.stderr
    assert done.stdout == ""


def test_the_token_as_a_header_or_once_in_the_address(
        sqlite_url: str, dashboard_factory: Callable[..., Dashboard]) -> None:
    dash = dashboard_factory(sqlite_url, "--host", "0.0.0.0", "--token", "auto")
    wait_for(lambda: len(dash.lines) >= 3, message="the token lines")
    assert dash.lines[1].startswith("Access token (shown once): ")
    token = dash.lines[1].rsplit(" ", 1)[1]
    assert sum(token in line for line in dash.lines) == 2  # the token line and the address
    assert dash.get("/").status == 401
    assert dash.get("/api/status").status == 401
    assert dash.get("/", Authorization="Bearer wrong").status == 401
    assert dash.get("/healthz").status == 200  # for probes; says nothing of the jobs
    assert dash.get("/api/status", Authorization=f"Bearer {token}").status == 200
    assert dash.get("/api/status", **{"X-Queuectl-Token": token}).status == 200
    assert dash.get("/jobs?token=wrong").status == 401
    exchange = dash.get(f"/jobs?state=dead&token={token}")
    assert exchange.status == 303 and exchange.headers["location"] == "/jobs?state=dead"
    cookie = exchange.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert dash.get("/jobs", Cookie=cookie.split(";", 1)[0]).status == 200


def test_read_only_hides_and_refuses_actions(
        sqlite_url: str, dashboard_factory: Callable[..., Dashboard]) -> None:
    dash = dashboard_factory(sqlite_url, "--read-only")
    ids = seed(dash)
    page = dash.get("/dlq").text
    assert "<form" not in page and "Retry all" not in page
    assert "<form method=\"post\"" not in dash.get(f"/jobs/{ids['waiting']}").text
    before = snapshot(dash)
    assert dash.post(f"/dlq/{ids['bad']}/retry", {"csrf": dash.csrf()}).status == 403
    assert snapshot(dash) == before


def test_a_port_in_use_is_one_line_and_exit_1(sqlite_url: str) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        done = run_cli("dashboard", "--port", str(port), db=sqlite_url, timeout=30)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "cannot listen" in done.stderr


def test_the_cli_does_not_import_the_web_stack(sqlite_url: str) -> None:
    code = ("import sys; from queuectl.cli import app; "
            "app.run(['--db', sys.argv[1], 'status', '--json']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('starlette', 'uvicorn', 'jinja2', 'prometheus_client', 'anyio')))")
    import subprocess

    done = subprocess.run([sys.executable, "-c", code, sqlite_url], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"')) == []


@pytest.mark.parametrize("args", [["--token", ""], ["--token", "        "], ["--token", "short"],
                                  ["--token", "has;semicolon"], ["--token", "tökenlong"]])
def test_a_bad_token_is_bad_input(sqlite_url: str, args: list[str]) -> None:
    done = run_cli("dashboard", "--port", "0", *args, db=sqlite_url, timeout=30)
    assert done.returncode == 2 and "token" in done.stderr


def test_a_finished_jobs_event_stream_gives_its_output_then_ends(dashboard: Dashboard) -> None:
    ids = seed(dashboard)
    reply = dashboard.get(f"/events/jobs/{ids['ok']}")  # ends by itself: the job has ended
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/event-stream")
    events = [block.split("\n") for block in reply.text.strip().split("\n\n")]
    parsed = [(lines[0].removeprefix("event: "), json.loads(lines[1].removeprefix("data: ")))
              for lines in events]
    shown = dashboard.cli_json("show", ids["ok"])
    assert parsed == [("output", {"text": "fine\n"}),
                      ("end", {k: v for k, v in shown.items()
                               if k not in ("output", "dependencies", "dependants")})]

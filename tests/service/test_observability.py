"""What operators watch: JSON request logs, /metrics, /healthz and /readyz of a real
server (and of two worker processes, whose metrics must add up)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import httpx
import pytest
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DemoArchive, RunningServer, fetch, running_server
from tests.datalink.helpers import PUBLIC, one
from vo_service.metrics import Metrics
from vo_service.services.monitoring import Monitoring

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
TOP = {"LANG": "ADQL", "QUERY": "SELECT TOP 3 obs_id FROM ivoa.obscore"}


def json_lines(server: RunningServer) -> list[dict[str, Any]]:
    """Every line of the server's output, each of which must be one JSON object."""
    lines = []
    for text in server.log().splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            pytest.fail(f"not a JSON log line: {text[:300]}")
        assert isinstance(line, dict)
        for key in ("time", "level", "logger", "request_id", "message"):
            assert key in line, (key, line)
        lines.append(line)
    return lines


def request_lines(server: RunningServer, request_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5  # the line is written once the response has ended
    while True:
        found = [line for line in json_lines(server) if line["request_id"] == request_id]
        if any(line.get("event") == "request" for line in found) or \
                time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def access_line(server: RunningServer, request_id: str) -> dict[str, Any]:
    lines = [line for line in request_lines(server, request_id)
             if line.get("event") == "request"]
    assert len(lines) == 1, lines
    return lines[0]


def scrape(base_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The /metrics samples: (name, labels) -> value."""
    reply = httpx.get(f"{base_url}/metrics", timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_one_json_line_per_request_with_id_route_status_login(server, archive: DemoArchive
                                                              ) -> None:
    login, password = archive.password(archive.schedule["observers"][0]["obid"])
    reply = httpx.get(f"{server.tap_url}/sync", params=TOP, auth=(login, password),
                      timeout=60)
    assert reply.status_code == 200
    request_id = reply.headers["x-request-id"]
    assert len(request_id) == 16 and int(request_id, 16) >= 0
    line = access_line(server, request_id)
    assert line["route"] == "/tap/sync" and line["path"] == "/tap/sync"
    assert line["method"] == "GET" and line["status"] == 200
    assert line["login"] == login and line["client"] == "127.0.0.1"
    assert 0 < line["duration_ms"] < 60_000 and line["bytes"] == len(reply.content)
    assert line["logger"] == "lick_archive.access" and line["level"] == "INFO"
    # never credentials: not the password, not the header, not the query string
    log = server.log()
    basic = base64.b64encode(f"{login}:{password}".encode()).decode()
    assert password not in log and basic not in log
    assert "SELECT TOP 3" not in json.dumps(line)
    # anonymous, and a path under a template: the template is the route
    job = httpx.post(f"{server.tap_url}/async", data=TOP)
    job_id = job.headers["location"].rsplit("/", 1)[1]
    read = httpx.get(f"{server.tap_url}/async/{job_id}")
    line = access_line(server, read.headers["x-request-id"])
    assert line["route"] == "/tap/async/{job_id}" and line["path"].endswith(job_id)
    assert line["login"] == "anonymous" and line["status"] == 200
    httpx.delete(f"{server.tap_url}/async/{job_id}")


def test_error_documents_name_the_request(server) -> None:
    reply = httpx.get(f"{server.tap_url}/sync", params={"LANG": "ADQL", "QUERY": "SELEKT"})
    assert reply.status_code == 400
    request_id = reply.headers["x-request-id"]
    root = etree.fromstring(reply.content)
    infos = {info.get("name"): info for info in root.iter(f"{VOT}INFO")}
    assert infos["QUERY_STATUS"].get("value") == "ERROR"
    assert infos["request_id"].get("value") == request_id
    assert access_line(server, request_id)["status"] == 400
    # a protected resource without credentials: 401, its document names the request too
    denied = httpx.get(f"{server.tap_url}/async", params={"PHASE": "x"},
                       headers={"Authorization": "Bearer lick_" + "x" * 40})
    assert denied.status_code == 401
    assert denied.headers["x-request-id"].encode() in denied.content
    line = access_line(server, denied.headers["x-request-id"])
    # refused before routing, still counted under its route
    assert line["login"] == "anonymous" and line["route"] == "/tap/async"


def test_every_line_of_a_request_carries_its_id(server) -> None:
    """A request that logs on its way (a result failing mid-stream logs from a worker
    thread): each of its lines has its id, and the access line comes last."""
    from tests.tap.test_streaming import _failing_request_with_id

    status, _body, error, request_id = _failing_request_with_id(server, "csv", "general")
    assert status == 200 and error is not None
    deadline = time.monotonic() + 10
    lines: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        lines = request_lines(server, request_id)
        if len(lines) >= 2 and any(line.get("event") == "request" for line in lines):
            break
        time.sleep(0.1)
    messages = [line["message"] for line in lines]
    assert any(m.startswith("result stream failed") for m in messages), messages
    assert lines[-1].get("event") == "request" and lines[-1]["status"] == 200
    assert sum(line.get("event") == "request" for line in lines) == 1
    failure = next(line for line in lines if line["message"].startswith("result stream"))
    assert failure["level"] == "ERROR" and failure["logger"] == "lick_archive.tap"


def test_metrics_count_requests_by_route_template(server, archive) -> None:
    before = scrape(server.base_url)
    ok = httpx.get(f"{server.tap_url}/sync", params=TOP, timeout=60)
    bad = httpx.get(f"{server.tap_url}/sync", params={"LANG": "ADQL", "QUERY": "SELEKT"})
    assert (ok.status_code, bad.status_code) == (200, 400)
    random_path = f"/no/such/{secrets.token_hex(8)}"
    assert httpx.get(f"{server.base_url}{random_path}").status_code == 404
    did, _ = one(server.database, PUBLIC)
    data = httpx.get(f"{server.base_url}/data/file", params={"ID": did}, timeout=60)
    assert data.status_code == 200
    after = scrape(server.base_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "lick_archive_http_requests_total"
    assert delta(requests, route="/tap/sync", method="GET", status="200") >= 1
    assert delta(requests, route="/tap/sync", method="GET", status="400") >= 1
    assert delta(requests, route="unmatched", method="GET", status="404") >= 1
    assert delta("lick_archive_http_request_duration_seconds_count",
                 route="/tap/sync", method="GET") >= 2
    # raw paths never become labels (bounded cardinality)
    labels = {v for (_name, labelset) in after for (_k, v) in labelset}
    assert random_path not in labels and not any(did in v for v in labels)
    assert delta("lick_archive_queries_total", mode="sync", outcome="ok") >= 1
    assert delta("lick_archive_queries_total", mode="sync", outcome="rejected") >= 1
    assert delta("lick_archive_downloaded_bytes_total", route="/data/file") \
        >= len(data.content)
    # pools: sizes, and each admission's wait observed
    assert value(after, "lick_archive_pool_size", pool="query") == \
        server.database.settings.database.query_pool_size
    assert delta("lick_archive_pool_admission_wait_seconds_count", pool="query") >= 1
    assert value(after, "lick_archive_pool_in_use", pool="query") >= 0
    assert ("lick_archive_pool_admission_timeouts_total",
            frozenset({("pool", "query")})) in after


def test_metrics_from_the_database_match_it(server, archive) -> None:
    """Files by instrument, rejections by reason and jobs by phase are the database's
    (within the 15 s the figures are reused; a fresh server reads them at once)."""
    finished = ("lick_archive_uws_jobs_finished_total",
                frozenset({("phase", "COMPLETED")}))
    async_ok = ("lick_archive_queries_total",
                frozenset({("mode", "async"), ("outcome", "ok")}))
    with running_server(server.database) as fresh:
        # any instance's runner may take the job: the session's server counts too
        elsewhere = scrape(server.base_url)
        job = httpx.post(f"{fresh.tap_url}/async", data={**TOP, "PHASE": "RUN"})
        job_url = job.headers["location"]
        deadline = time.monotonic() + 30
        while httpx.get(f"{job_url}/phase").text != "COMPLETED":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        samples = scrape(fresh.base_url)
        owner = server.database.owner_dsn
        for instrument, count in fetch(owner, "SELECT instrument, count(*) FROM lick.files "
                                       "GROUP BY instrument"):
            assert value(samples, "lick_archive_archive_files",
                         instrument=instrument) == count
        rejected = fetch(owner, "SELECT reason, count(*) FROM ingest.rejected_files "
                         "GROUP BY reason")
        assert rejected, "the demo archive has unreadable files"
        for reason, count in rejected:
            assert value(samples, "lick_archive_ingest_rejected_files", reason=reason) \
                == count
        completed = fetch(owner, "SELECT count(*) FROM uws.jobs WHERE phase = 'COMPLETED'")
        assert value(samples, "lick_archive_uws_jobs", phase="COMPLETED") \
            == completed[0][0] >= 1
        deadline = time.monotonic() + 5  # counted just after the phase is committed
        while True:
            here, after = scrape(fresh.base_url), scrape(server.base_url)
            counts = [here.get(k, 0) + after.get(k, 0) - elsewhere.get(k, 0)
                      for k in (finished, async_ok)]
            if counts == [1, 1] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert counts == [1, 1]
        httpx.delete(job_url)


def test_two_workers_add_up(server) -> None:
    """With ``--workers 2`` each process counts its own requests; a scrape, answered
    by either, reports the sum of both (prometheus_client's multiprocess mode)."""
    with running_server(server.database, {"LICK_ARCHIVE_SERVICE_WORKERS": "2"}) as two:
        start = value(scrape(two.base_url), "lick_archive_http_requests_total",
                      route="/healthz", method="GET", status="200")
        seen = set()
        for _ in range(40):  # new connections: the kernel spreads them over the workers
            with httpx.Client() as client:
                reply = client.get(f"{two.base_url}/healthz")
                assert reply.status_code == 200 and reply.json() == {"status": "alive"}
            seen.add(reply.headers["x-request-id"])
        for _ in range(6):  # whichever worker answers the scrape, the sum is the same
            with httpx.Client() as client:
                samples = scrape(two.base_url)
            assert value(samples, "lick_archive_http_requests_total", route="/healthz",
                         method="GET", status="200") - start == 40
            # each worker's pools count once: the size is the sum over both workers
            assert value(samples, "lick_archive_pool_size", pool="probe") == 4
        pids = {line.get("message") for line in json_lines(two)
                if "Started server process" in line.get("message", "")}
        assert len(pids) >= 2, pids


def test_health_endpoints(server) -> None:
    alive = httpx.get(f"{server.base_url}/healthz")
    assert alive.status_code == 200 and alive.json() == {"status": "alive"}
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.headers["cache-control"] == "no-store"
    # VOSI availability is a separate document for VO clients
    assert b"<avl:available>true" in httpx.get(f"{server.tap_url}/availability").content
    assert httpx.post(f"{server.base_url}/healthz").status_code == 405


def test_metrics_only_for_the_monitoring_networks() -> None:
    monitoring = Monitoring(None, Metrics(), ("127.0.0.0/8", "::1/128", "10.1.0.0/16"))  # type: ignore[arg-type]
    assert monitoring.may_scrape("127.0.0.1") and monitoring.may_scrape("::1")
    assert monitoring.may_scrape("10.1.2.3")
    assert not monitoring.may_scrape("192.0.2.7") and not monitoring.may_scrape("unknown")
    with pytest.raises(ValueError, match="metrics_clients"):
        Monitoring(None, Metrics(), ("not-a-network",))  # type: ignore[arg-type]


def test_alert_rules_and_dashboard_use_metrics_that_exist(server, archive) -> None:
    """conf/prometheus/lick-archive-alerts.yml and conf/grafana's dashboard name only
    metrics that the service's /metrics or the watcher's serve."""
    import re

    import yaml

    from tests.conftest import PROJECT

    rules = yaml.safe_load((PROJECT / "conf" / "prometheus" /
                            "lick-archive-alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(exprs) >= 5 and all(rule.get("alert") for group in rules["groups"]
                                   for rule in group["rules"])
    # and the sample Grafana dashboard's panels
    dashboard = json.loads((PROJECT / "conf" / "grafana" /
                            "lick-archive-dashboard.json").read_text())
    panels = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(panels) >= 10
    exprs += panels
    httpx.get(f"{server.tap_url}/sync", params=TOP, timeout=60)  # a query has been counted
    did, _ = one(server.database, PUBLIC)  # and a download
    assert httpx.get(f"{server.base_url}/data/file", params={"ID": did}).status_code == 200
    from prometheus_client import generate_latest

    from ingest.metrics import WatchMetrics

    text = httpx.get(f"{server.base_url}/metrics").text
    text += generate_latest(WatchMetrics().registry).decode()  # the watcher's
    served = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    served |= {f"{name}_{suffix}" for name in served
               for suffix in ("total", "bucket", "count", "sum")}
    used = {name for expr in exprs for name in re.findall(r"lick_archive_[a-z_]+", expr)}
    assert used and used <= served, used - served


def test_health_and_metrics_answer_while_queries_hold_every_slot(server) -> None:
    """Slow queries take both slots of the query pool and more wait for them: /readyz
    and /metrics answer at once (pools of their own), and the metrics show the full
    pool, the waits and the refusals."""
    import threading

    from tests.service.test_fairness import SLOW, _busy_backends, _cancel_queries

    env = {"LICK_ARCHIVE_DATABASE_QUERY_POOL_SIZE": "2",
           "LICK_ARCHIVE_DATABASE_ADMISSION_WAIT_S": "2"}
    with running_server(server.database, env) as small:
        stop = threading.Event()
        statuses: list[int] = []

        def slow() -> None:
            with httpx.Client(timeout=120) as client:
                while not stop.is_set():
                    statuses.append(client.get(f"{small.tap_url}/sync", params={
                        "LANG": "ADQL", "QUERY": SLOW}).status_code)

        threads = [threading.Thread(target=slow, daemon=True) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 30
            while _busy_backends(small) < 2:
                assert time.monotonic() < deadline, "the slow queries did not start"
                time.sleep(0.1)
            time.sleep(2.5)  # some waiters have been refused by now
            for _ in range(5):
                started = time.perf_counter()
                assert httpx.get(f"{small.base_url}/readyz", timeout=10).status_code == 200
                assert time.perf_counter() - started < 1.0
                started = time.perf_counter()
                samples = scrape(small.base_url)
                assert time.perf_counter() - started < 2.0
            assert value(samples, "lick_archive_pool_in_use", pool="query") == 2
            assert value(samples, "lick_archive_pool_size", pool="query") == 2
            assert value(samples, "lick_archive_pool_admission_timeouts_total",
                         pool="query") >= 1
            # the refused waited their 2 s: observed above the 1 s bucket
            waited = value(samples, "lick_archive_pool_admission_wait_seconds_count",
                           pool="query") - value(
                samples, "lick_archive_pool_admission_wait_seconds_bucket", pool="query",
                le="1.0")
            assert waited >= value(samples, "lick_archive_pool_admission_timeouts_total",
                                   pool="query") >= 1
            assert value(samples, "lick_archive_queries_total", mode="sync",
                         outcome="unavailable") >= 1
        finally:
            stop.set()
            deadline = time.monotonic() + 30
            while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
                _cancel_queries(small)  # and those admitted meanwhile
                for thread in threads:
                    thread.join(timeout=0.2)
        assert 503 in statuses and not [s for s in statuses if s not in (200, 400, 503)]

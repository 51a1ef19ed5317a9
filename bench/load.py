"""Load benchmark: a crowd of clients, bounded and on loopback.

    .venv/bin/python -m bench.load [--clients 1,32,128] [--seconds 15] [--workers 1,2,4]
        [--mix-seconds 60] [--soak-clients 50] [--soak-seconds 60] [--rows 100000]

Builds (once, cached in var/bench-load) a private embedded database whose ivoa.obscore
holds ``--rows`` rows of bench/archive.py's synthetic archive (1,000 public frames
with real files of about 100 KiB on disk), then, against a real `lick-archive serve`:

* **cone levels**: for each number of concurrent clients, ``--seconds`` of small sync
  cone queries (<= 100 rows, BINARY2), each client sending its next request as soon as
  the previous answer is read, against the baseline ``GET /tap/availability`` (the
  cheapest database-backed request) from as many clients.  Targets (2 cores): 0
  errors, >= 130 answers/s at 32 clients, p50 <= 5 ms for one client.
* **the mix** from 32 clients for ``--mix-seconds`` with 1, 2 and 4 server processes
  (``serve --workers N``): TAP sync cones 35 %, SIA 20 %, DataLink 20 %, 100 KiB
  downloads 15 %, async jobs 10 % (create with PHASE=RUN, WAIT, read the result,
  delete).  p50/p99 per kind, requests/s per number of processes; target 0 errors.
* **200 async jobs queued at once**: all must complete, none lost.
* **the soak**: the mix from ``--soak-clients`` clients for ``--soak-seconds``
  (operators: ``--only mix --workers 2 --soak-seconds 600`` for ten minutes) while the
  server's resident memory is sampled every 5 s: 0 errors, memory flat.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from bench.datalink import build_files, public_ids
from bench.report import record
from bench.tap import build_database, start_server

PROJECT = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


def cone_params(i: int) -> dict[str, str]:
    ra, dec = (i * 7.3) % 360, ((i * 3.1) % 120) - 60
    query = ("SELECT obs_id, s_ra, s_dec, t_min FROM ivoa.obscore WHERE "
             f"1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra}, {dec}, 0.05))")
    return {"LANG": "ADQL", "QUERY": query, "MAXREC": "100"}


class Connection:
    """A minimal HTTP/1.1 keep-alive client on one socket.

    The load generator runs on the same two cores as the server: httpx's per-request
    cost grows with its number of connections (7.9 ms a request at 128 clients,
    measured), so the clients would measure themselves.  This one costs a few tens of
    microseconds: it writes a GET and reads a Content-Length or chunked answer.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, target: str, body: bytes = b""
                      ) -> tuple[int, bytes, bytes]:
        """One request on the kept-alive socket: (status, head, body)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        extra = (b"Content-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: %d\r\n" % len(body)) if method == "POST" else b""
        self.writer.write(f"{method} {target} HTTP/1.1\r\nHost: {self.host}\r\n".encode()
                          + extra + b"\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        lower = head.lower()
        parts = []
        if b"transfer-encoding: chunked" in lower:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append((await self.reader.readexactly(size + 2))[:-2])
                if size == 0:
                    break
        elif b"content-length:" in lower:
            length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
            parts.append(await self.reader.readexactly(length))
        if b"connection: close" in lower:
            await self.close()
        return status, head, b"".join(parts)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


async def run_level(base: str, clients: int, seconds: float, kind: str) -> Outcome:
    """``clients`` clients of one kind: "tap" (cone queries) or "availability"."""
    return (await run_mix(base, clients, seconds, NO_DATASETS, {kind: 1.0}))[kind]


def describe(name: str, outcome: Outcome) -> str:
    text = (f"{name:13s} {outcome.rate:8.1f} req/s  p50 {outcome.percentile(0.5):7.1f} ms  "
            f"p99 {outcome.percentile(0.99):8.1f} ms  errors {outcome.errors}")
    if outcome.first_error:
        text += f"  (first: {outcome.first_error})"
    return text


# -- the mix: what a crowd of VO clients does at once -------------------------------------

#: kind -> share of the requests
MIX = {"tap": 0.35, "sia": 0.20, "datalink": 0.20, "download": 0.15, "async": 0.10}


@dataclass(frozen=True)
class Datasets:
    """Identifiers the mix asks for: public ones for DataLink, and those of the sample
    files written on disk (about 100 KiB each) for downloads."""

    links: list[str]
    files: list[str]


NO_DATASETS = Datasets([], [])


def _mix_target(kind: str, i: int, datasets: Datasets) -> str:
    ra, dec = (i * 7.3) % 360, ((i * 3.1) % 120) - 60
    if kind == "availability":
        return "/tap/availability"
    if kind == "tap":
        return "/tap/sync?" + urllib.parse.urlencode(cone_params(i))
    if kind == "sia":
        return "/sia/query?" + urllib.parse.urlencode(
            {"POS": f"CIRCLE {ra} {dec} 0.05", "MAXREC": "100"})
    if kind == "datalink":
        return "/datalink/links?" + urllib.parse.urlencode(
            {"ID": datasets.links[(i * 7919) % len(datasets.links)]})
    # a small file (about 100 KiB) of the sample written on disk
    return "/data/file?" + urllib.parse.urlencode(
        {"ID": datasets.files[i % len(datasets.files)]})


def _phase(job_document: bytes) -> bytes:
    """The phase in a UWS job document."""
    start = job_document.find(b"phase>")
    return job_document[start + 6:job_document.find(b"<", start)] if start >= 0 else b""


def _location(head: bytes) -> str:
    """The path of a response's Location header."""
    line = next(h for h in head.split(b"\r\n") if h.lower().startswith(b"location:"))
    return urllib.parse.urlsplit(line[9:].strip().decode()).path


async def _final_phase(connection: Connection, job: str, waits: int) -> bytes:
    """The job's phase once it ended, or after ``waits`` blocking reads (UWS 1.1
    blocking: WAIT on the job resource, 10 s each at most)."""
    phase = b""
    for _ in range(waits):
        _, _, document = await connection.request("GET", f"{job}?WAIT=10")
        phase = _phase(document)
        if phase in (b"COMPLETED", b"ERROR", b"ABORTED"):
            break
    return phase


async def _async_job(connection: Connection, i: int) -> tuple[int, str]:
    """Create, run, wait for, read and delete one async job: (status, detail)."""
    query = urllib.parse.urlencode({**cone_params(i), "PHASE": "RUN"}).encode()
    status, head, _ = await connection.request("POST", "/tap/async", query)
    if status != 303:
        return status, f"create {status}"
    job = _location(head)
    started = time.perf_counter()
    phase = await _final_phase(connection, job, 30)
    if phase != b"COMPLETED":
        return 0, (f"job {job} {phase.decode() or 'unreadable'} after 30 WAITs "
                   f"({time.perf_counter() - started:.1f} s)")
    status, _, _ = await connection.request("GET", f"{job}/results/result")
    if status != 200:
        return status, f"result {status}"
    status, _, _ = await connection.request("POST", job, b"ACTION=DELETE")
    return (200, "") if status == 303 else (status, f"delete {status}")


async def run_mix(base: str, clients: int, seconds: float, datasets: Datasets,
                  shares: dict[str, float] = MIX) -> dict[str, Outcome]:
    """``clients`` clients for ``seconds``, each sending its next request (of a kind
    drawn by ``shares``) as soon as the previous answer is read."""
    outcomes = {kind: Outcome() for kind in shares}
    parts = urllib.parse.urlsplit(base)
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))
    kinds = [kind for kind, share in shares.items() for _ in range(round(share * 100))]

    async def one_client() -> None:
        connection = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        try:
            while time.perf_counter() < deadline:
                i = next(counter)
                kind = kinds[(i * 37) % len(kinds)]
                start = time.perf_counter()
                try:
                    if kind == "async":
                        status, detail = await _async_job(connection, i)
                    else:
                        status = (await connection.request(
                            "GET", _mix_target(kind, i, datasets)))[0]
                        detail = str(status)
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                    status, detail = 0, f"{type(exc).__name__}: {exc}"
                    await connection.close()
                outcome = outcomes[kind]
                if status == 200:
                    outcome.latencies.append(time.perf_counter() - start)
                else:
                    outcome.errors += 1
                    outcome.first_error = outcome.first_error or detail
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    for outcome in outcomes.values():
        outcome.seconds = time.perf_counter() - started
    return outcomes


async def queue_jobs(base: str, jobs: int) -> tuple[int, int, float]:
    """Create ``jobs`` async jobs at once (32 connections), then wait for every one:
    (completed, lost or failed, seconds until the last completed)."""
    parts = urllib.parse.urlsplit(base)
    started = time.perf_counter()
    created: list[str] = []

    async def create(batch: list[int]) -> None:
        connection = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        try:
            for i in batch:
                body = urllib.parse.urlencode({**cone_params(i), "PHASE": "RUN"}).encode()
                status, head, _ = await connection.request("POST", "/tap/async", body)
                if status == 303:
                    created.append(_location(head))
        finally:
            await connection.close()

    await asyncio.gather(*(create(list(range(k, jobs, 32))) for k in range(32)))
    phases: dict[str, bytes] = {}

    async def follow(batch: list[str]) -> None:
        connection = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        try:
            for job in batch:
                phases[job] = await _final_phase(connection, job, 60)
                await connection.request("POST", job, b"ACTION=DELETE")
        finally:
            await connection.close()

    await asyncio.gather(*(follow(created[k::32]) for k in range(32)))
    completed = sum(phase == b"COMPLETED" for phase in phases.values())
    return completed, jobs - completed, time.perf_counter() - started


def server_rss_mb(process: subprocess.Popen[bytes]) -> float:
    """Resident memory of the server and its worker processes."""
    pids = {process.pid}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == process.pid:
                pids.add(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def _sampled(process: subprocess.Popen[bytes], work, every_s: float = 5.0
                   ):
    """Run ``work`` while sampling the server's memory: (its result, the samples)."""
    samples = [server_rss_mb(process)]
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait({task}, timeout=every_s)
        samples.append(server_rss_mb(process))
    return task.result(), samples


def describe_mix(outcomes: dict[str, Outcome]) -> list[str]:
    lines = [f"    {describe(kind, outcome)}" for kind, outcome in outcomes.items()]
    total = sum(len(o.latencies) for o in outcomes.values())
    seconds = next(iter(outcomes.values())).seconds
    errors = sum(o.errors for o in outcomes.values())
    lines.append(f"    all kinds   {total / seconds:8.1f} req/s  errors {errors}")
    return lines


def _mix_rate(outcomes: dict[str, Outcome]) -> float:
    seconds = next(iter(outcomes.values())).seconds
    return sum(len(o.latencies) for o in outcomes.values()) / seconds


def _errors(outcomes: dict[str, Outcome]) -> int:
    return sum(o.errors for o in outcomes.values())


def cone_levels(args: argparse.Namespace, data_dir: Path) -> None:
    """Sync cone queries from 1 … 128 clients against VOSI availability."""
    process = start_server(data_dir, args.port)
    base = f"http://127.0.0.1:{args.port}"
    summary = []
    try:
        asyncio.run(run_level(base, 4, 2.0, "tap"))  # warm the pools and plans
        for clients in [int(n) for n in args.clients.split(",")]:
            cone = asyncio.run(run_level(base, clients, args.seconds, "tap"))
            baseline = asyncio.run(run_level(base, clients, args.seconds, "availability"))
            ratio = cone.rate / baseline.rate if baseline.rate else float("nan")
            print(f"{clients:4d} clients  {describe('cone query', cone)}", flush=True)
            print(f"              {describe('availability', baseline)}", flush=True)
            print(f"              cone/availability rate: {ratio:.2f}", flush=True)
            summary.append((clients, cone, baseline))
    finally:
        stop(process)
    for clients, cone, baseline in summary:
        target, met = "", None
        if clients == 1:
            target, met = "p50 <= 5 ms", cone.percentile(0.5) <= 5
        record("load", f"cone p50, {clients} client(s)", cone.percentile(0.5), "ms",
               target=target, met=met)
        target, met = "0 errors", cone.errors + baseline.errors == 0
        if clients == 32:
            target, met = ">= 130 req/s, 0 errors", met and cone.rate >= 130
        record("load", f"cone rate, {clients} client(s)", cone.rate, "req/s",
               baseline=baseline.rate, baseline_name="availability", target=target, met=met)


def mix(args: argparse.Namespace, data_dir: Path, datasets: Datasets) -> None:
    """The mix from 32 clients with 1, 2 and 4 server processes, 200 queued jobs, and
    the soak: the mix from 50 clients while the server's memory is sampled."""
    base = f"http://127.0.0.1:{args.port}"
    rates = {}
    for workers in [int(n) for n in args.workers.split(",")]:
        process = start_server(data_dir, args.port, workers=workers)
        try:
            asyncio.run(run_mix(base, 4, 2.0, datasets))  # warm every worker a little
            outcomes = asyncio.run(run_mix(base, 32, args.mix_seconds, datasets))
        finally:
            stop(process)
        rates[workers] = _mix_rate(outcomes)
        print(f"mix, 32 clients, {workers} worker(s), {args.mix_seconds:.0f} s:", flush=True)
        print("\n".join(describe_mix(outcomes)), flush=True)
        for kind, outcome in outcomes.items():
            record("load", f"mix {kind} p50 / p99, {workers} worker(s)",
                   outcome.percentile(0.5), "ms", baseline=outcome.percentile(0.99),
                   baseline_name="its p99")
        record("load", f"mix rate, 32 clients, {workers} worker(s)", rates[workers],
               "req/s", baseline=rates[min(rates)], baseline_name=f"{min(rates)} worker(s)",
               target="0 errors", met=_errors(outcomes) == 0)
    process = start_server(data_dir, args.port, workers=args.soak_workers)
    try:
        completed, lost, seconds = asyncio.run(queue_jobs(base, args.jobs))
        print(f"{args.jobs} async jobs queued at once: {completed} completed, {lost} lost "
              f"or failed, all done in {seconds:.1f} s", flush=True)
        record("load", f"{args.jobs} queued async jobs completed", completed, "jobs",
               target=f"all {args.jobs}, none lost", met=completed == args.jobs)
        asyncio.run(run_mix(base, 8, 5.0, datasets))  # warm up before the first sample
        outcomes, samples = asyncio.run(_sampled(
            process, run_mix(base, args.soak_clients, args.soak_seconds, datasets)))
    finally:
        stop(process)
    print(f"soak: the mix from {args.soak_clients} clients for {args.soak_seconds:.0f} s, "
          f"{args.soak_workers} worker(s):", flush=True)
    print("\n".join(describe_mix(outcomes)), flush=True)
    growth = samples[-1] - samples[0]
    print(f"    server memory (MB, every 5 s): {' '.join(f'{m:.0f}' for m in samples)}; "
          f"growth {growth:+.0f} MB", flush=True)
    record("load", f"soak rate, {args.soak_clients} clients", _mix_rate(outcomes), "req/s",
           target="0 errors", met=_errors(outcomes) == 0)
    record("load", "soak server memory at the end", samples[-1], "MB",
           baseline=samples[0], baseline_name="after warm-up",
           target="flat (<= +20 %)", met=samples[-1] <= 1.2 * samples[0])


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="1,32,128",
                        help="comma-separated numbers of concurrent cone-query clients")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="per cone level and kind")
    parser.add_argument("--workers", default="1,2,4",
                        help="server processes for the mix, comma-separated")
    parser.add_argument("--mix-seconds", type=float, default=60.0)
    parser.add_argument("--jobs", type=int, default=200, help="async jobs queued at once")
    parser.add_argument("--soak-clients", type=int, default=50)
    parser.add_argument("--soak-seconds", type=float, default=60.0,
                        help="600 for the operators' 10-minute soak")
    parser.add_argument("--soak-workers", type=int, default=2)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--only", choices=("cone", "mix"), default=None)
    args = parser.parse_args()
    data_dir = PROJECT / "var" / "bench-load"
    target = build_database(data_dir, args.rows)
    files, _ = build_files(target, data_dir / "archive")
    datasets = Datasets(public_ids(target, args.rows), files[:-1])  # the last is 100 MiB
    os.environ["LICK_ARCHIVE_INGEST_ROOTS"] = str(data_dir / "archive")
    # every bench client comes from loopback: lift the per-address and anonymous caps
    # of unfinished async jobs, which would count the whole crowd as one client
    os.environ["LICK_ARCHIVE_UWS_MAX_ACTIVE_JOBS_PER_ADDRESS"] = "100000"
    os.environ["LICK_ARCHIVE_UWS_MAX_ACTIVE_ANONYMOUS_JOBS"] = "100000"
    if args.only in (None, "cone"):
        cone_levels(args, data_dir)
    if args.only in (None, "mix"):
        mix(args, data_dir, datasets)


if __name__ == "__main__":
    main()

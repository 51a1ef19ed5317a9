"""Load benchmark: many concurrent clients of TAP sync cone queries, bounded and on loopback.

    .venv/bin/python -m bench.load [--clients 1,8,32,128] [--seconds 30] [--rows 100000]

Builds (once, cached in var/bench-load) a private embedded database whose ivoa.obscore
holds ``--rows`` synthetic public rows, starts a real `lick-archive serve` on a loopback
port and, for each number of concurrent clients, runs for ``--seconds``:

* the workload: small sync cone queries (<= 100 rows, BINARY2), each client sending its
  next request as soon as the previous answer is read;
* the baseline, in the same run and with the same clients: ``GET /tap/availability``,
  the cheapest database-backed request.

It prints requests/s, p50/p99 latency and the number of failed requests (any status
other than 200, or a transport error) for both, and the workload's share of the
baseline's rate.  Targets (issue "The service never stalls", 2 cores): 0 errors at every
level, >= 130 answers/s at 32 clients, p50 <= 5 ms for one client.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

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

    async def get(self, target: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
            await self.reader.readexactly(length)
        if b"connection: close" in lower:
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


async def run_level(base: str, clients: int, seconds: float, kind: str) -> Outcome:
    outcome = Outcome()
    parts = urllib.parse.urlsplit(base)
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def one_client() -> None:
        connection = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        try:
            while time.perf_counter() < deadline:
                i = next(counter)
                target = ("/tap/sync?" + urllib.parse.urlencode(cone_params(i))
                          if kind == "cone" else "/tap/availability")
                start = time.perf_counter()
                try:
                    status = await connection.get(target)
                    detail = str(status)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    status, detail = 0, f"{type(exc).__name__}: {exc}"
                    await connection.close()
                if status == 200:
                    outcome.latencies.append(time.perf_counter() - start)
                else:
                    outcome.errors += 1
                    outcome.first_error = outcome.first_error or detail
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    outcome.seconds = time.perf_counter() - started
    return outcome


def describe(name: str, outcome: Outcome) -> str:
    text = (f"{name:13s} {outcome.rate:8.1f} req/s  p50 {outcome.percentile(0.5):7.1f} ms  "
            f"p99 {outcome.percentile(0.99):8.1f} ms  errors {outcome.errors}")
    if outcome.first_error:
        text += f"  (first: {outcome.first_error})"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="1,8,32,128",
                        help="comma-separated numbers of concurrent clients")
    parser.add_argument("--seconds", type=float, default=30.0, help="per level and kind")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    levels = [int(n) for n in args.clients.split(",")]
    data_dir = PROJECT / "var" / "bench-load"
    build_database(data_dir, args.rows)
    process = start_server(data_dir, args.port)
    base = f"http://127.0.0.1:{args.port}"
    summary = []
    try:
        asyncio.run(run_level(base, 4, 2.0, "cone"))  # warm the pools and plans
        for clients in levels:
            cone = asyncio.run(run_level(base, clients, args.seconds, "cone"))
            baseline = asyncio.run(run_level(base, clients, args.seconds, "availability"))
            ratio = cone.rate / baseline.rate if baseline.rate else float("nan")
            print(f"{clients:4d} clients  {describe('cone query', cone)}", flush=True)
            print(f"              {describe('availability', baseline)}", flush=True)
            print(f"              cone/availability rate: {ratio:.2f}", flush=True)
            summary.append((clients, cone, baseline))
    finally:
        process.terminate()
        process.wait(timeout=20)
    print("\nclients  cone req/s  p50 ms  p99 ms  errors | availability req/s  errors")
    for clients, cone, baseline in summary:
        print(f"{clients:7d}  {cone.rate:10.1f}  {cone.percentile(0.5):6.1f}  "
              f"{cone.percentile(0.99):6.1f}  {cone.errors:6d} | {baseline.rate:18.1f}  "
              f"{baseline.errors:6d}")
    one = next((c for n, c, _ in summary if n == 1), None)
    at32 = next((c for n, c, _ in summary if n == 32), None)
    targets = []
    if one is not None:
        targets.append(f"one client's cone p50 {one.percentile(0.5):.1f} ms (target <= 5)")
    if at32 is not None:
        targets.append(f"32 clients {at32.rate:.0f} answers/s (target >= 130)")
    targets.append(f"errors {sum(c.errors + b.errors for _, c, b in summary)} (target 0)")
    print("; ".join(targets))
    print(f"median cone p50 over levels: "
          f"{statistics.median(c.percentile(0.5) for _, c, _ in summary):.1f} ms")


if __name__ == "__main__":
    main()

"""Translation speed over the ADQL test corpus: ``python -m bench.adql``.

Builds the parser once (reported separately), then translates every corpus query
``ROUNDS`` times and prints the median wall-clock and CPU time per query and the
throughput (wall-clock figures suffer when other processes load the machine); the
baseline, measured in the same loop, is parsing alone (no metadata check, no SQL).
"""

from __future__ import annotations

import statistics
import time

from bench.report import record
from tests.adql.corpus import CASES
from vo_service.adql import Metadata, translate
from vo_service.adql.parser import parse

ROUNDS = 20


def main() -> None:
    metadata = Metadata.from_declaration()
    queries = [case.adql for case in CASES]
    start = time.perf_counter()
    parse("SELECT 1 FROM x")
    build = time.perf_counter() - start
    for text in queries:  # warm-up (and the astropy import behind IN_UNIT)
        translate(text, metadata, limit=1001)
    per_query: list[float] = []
    cpu_per_query: list[float] = []
    parse_only: list[float] = []  # the baseline: the grammar alone, no translation
    total_start = time.perf_counter()
    for _ in range(ROUNDS):
        for text in queries:
            t0, c0 = time.perf_counter(), time.process_time()
            translate(text, metadata, limit=1001)
            cpu_per_query.append(time.process_time() - c0)
            per_query.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            parse(text)
            parse_only.append(time.perf_counter() - t0)
    total = time.perf_counter() - total_start
    median = statistics.median(per_query)
    cpu_median = statistics.median(cpu_per_query)
    print(f"parser build (once per process): {build * 1000:.0f} ms")
    print(f"corpus: {len(queries)} queries x {ROUNDS} rounds")
    print(f"median translation time: {median * 1e6:.0f} us ({1 / median:,.0f} queries/s)")
    print(f"median CPU time per query: {cpu_median * 1e6:.0f} us "
          f"({1 / cpu_median:,.0f} queries/s; insensitive to other load on the machine)")
    print(f"p90 translation time: {statistics.quantiles(per_query, n=10)[-1] * 1e6:.0f} us")
    print(f"throughput over the corpus: {len(per_query) / total:,.0f} queries/s")
    parsing = statistics.median(parse_only)
    print(f"baseline, parsing alone: median {parsing * 1e6:.0f} us")
    record("adql", "translation, median per corpus query", median * 1e6, "us",
           baseline=parsing * 1e6, baseline_name="parsing alone")


if __name__ == "__main__":
    main()

"""Run every benchmark in turn and print one table: ``python -m bench`` (``make bench``).

    python -m bench [--rows N] [--only tap,sia]

Each benchmark prints its own figures with a baseline measured in the same run and
records its headline figures (bench/report.py); the table at the end shows each
figure, its baseline, the ratio and the target.  The machine is shared and noisy, so
read the ratios and medians, not single numbers.  ``--rows`` sets the archive size of
the benchmarks that build a synthetic archive (``--rows 10000000``: archive scale).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.report import REPORT_ENV, print_table, read

#: name -> whether it takes ``--rows`` (the size of its synthetic archive)
BENCHMARKS = {"adql": False, "ingest_extract": False, "ingest": False, "serialize": False,
              "auth_rls": False, "tap": True, "sia": True, "datalink": True, "proxy": False,
              "search": True, "load": True}


#: shorter runs where the whole set must fit in about 15 minutes (the full variants:
#: ``python -m bench.load`` — 60 s mixes and soak — and ``python -m bench.search``)
IN_THE_SET = {"load": ["--seconds", "10", "--mix-seconds", "30", "--soak-seconds", "30"],
              "search": ["--requests", "50"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=None,
                        help="archive size for the benchmarks that build one")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    args = parser.parse_args()
    names = [n for n in BENCHMARKS if not args.only or n in args.only.split(",")]
    failed = []
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "figures.jsonl"
        env = {**os.environ, REPORT_ENV: str(report)}
        for name in names:
            print(f"\n=== bench.{name} ===", flush=True)
            command = [sys.executable, "-m", f"bench.{name}", *IN_THE_SET.get(name, [])]
            if args.rows is not None and BENCHMARKS[name]:
                command += ["--rows", str(args.rows)]
            if subprocess.run(command, env=env).returncode != 0:
                failed.append(name)
        print()
        print_table(read(report))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Run every benchmark in turn: ``python -m bench`` (``make bench``).

Each prints its own figures with a baseline measured in the same run; the machine is
shared and noisy, so read the ratios and medians, not single numbers.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ("adql", "ingest_extract", "ingest", "serialize", "auth_rls", "tap", "sia", "load",
              "datalink", "search")


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"\n=== bench.{name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

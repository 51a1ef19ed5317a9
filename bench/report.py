"""One table for every benchmark: each figure, its baseline from the same run, the
ratio, and the target.

A benchmark calls :func:`record` for each headline figure (besides printing its own
detail); ``python -m bench`` sets ``LICK_BENCH_REPORT`` to a file that collects the
records of every benchmark it runs and prints them together at the end
(:func:`print_table`).  Run alone, a benchmark's records are only printed.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

REPORT_ENV = "LICK_BENCH_REPORT"


@dataclass(frozen=True)
class Figure:
    bench: str        # the module, e.g. "tap"
    name: str         # what was measured, e.g. "cone p50, 32 clients"
    value: float
    unit: str         # "ms", "rows/s", "req/s", ...
    baseline: float | None = None  # the same quantity for the baseline of the same run
    baseline_name: str = ""         # e.g. "COPY TO STDOUT"
    target: str = ""  # e.g. ">= 0.9 x baseline", "<= 10 ms"
    met: bool | None = None  # None: no target

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline or math.isnan(self.baseline):
            return None
        return self.value / self.baseline


def record(bench: str, name: str, value: float, unit: str, *,
           baseline: float | None = None, baseline_name: str = "", target: str = "",
           met: bool | None = None) -> Figure:
    """Keep one headline figure for the table (and print it as a one-line summary)."""
    figure = Figure(bench, name, float(value), unit, baseline, baseline_name, target, met)
    path = os.environ.get(REPORT_ENV)
    if path:
        with Path(path).open("a") as out:
            out.write(json.dumps(asdict(figure)) + "\n")
    else:
        print("  " + _row(figure))
    return figure


def read(path: Path) -> list[Figure]:
    if not path.exists():
        return []
    return [Figure(**json.loads(line)) for line in path.read_text().splitlines() if line]


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _verdict(figure: Figure) -> str:
    return {None: "", True: "met", False: "MISSED"}[figure.met]


def _row(figure: Figure) -> str:
    ratio = figure.ratio
    baseline = (f"{_number(figure.baseline)} ({figure.baseline_name})"
                if figure.baseline is not None else "-")
    return (f"{figure.bench}: {figure.name} = {_number(figure.value)} {figure.unit}; "
            f"baseline {baseline}; ratio {_number(ratio)}; target {figure.target or '-'} "
            f"{_verdict(figure)}").rstrip()


def print_table(figures: list[Figure]) -> None:
    """The summary table: with rich when it is installed (it is a dependency)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Benchmarks (ratios against baselines measured in the same run)")
    for column in ("bench", "figure", "value", "baseline", "ratio", "target", ""):
        table.add_column(column, justify="right" if column in ("value", "ratio") else "left")
    for f in figures:
        baseline = (f"{_number(f.baseline)} {f.unit} ({f.baseline_name})"
                    if f.baseline is not None else "-")
        table.add_row(f.bench, f.name, f"{_number(f.value)} {f.unit}", baseline,
                      _number(f.ratio), f.target or "-", _verdict(f))
    Console(width=160).print(table)
    missed = [f for f in figures if f.met is False]
    print(f"{len(figures)} figures, {sum(f.met is True for f in figures)} targets met, "
          f"{len(missed)} missed")

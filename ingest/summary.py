"""What one ingest run did: the counts the loader returns and the report prints.

A type of its own, below both the loader that fills it and the report that renders it,
so that neither has to import the other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class IngestSummary:
    """Counts of one run; ``rejected`` counts files rejected in this run, by reason."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    still_rejected: int = 0
    ignored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return (self.new + self.updated + self.unchanged + self.still_rejected
                + sum(self.rejected.values()))

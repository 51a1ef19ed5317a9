"""The one error the translator raises: what is wrong with the query, and where."""

from __future__ import annotations


class AdqlError(Exception):
    """A query that is not ADQL we can run; ``line``/``column`` are 1-based when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.message = message
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"{self.message} (line {self.line}, column {self.column})"

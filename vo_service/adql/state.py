"""What one translation accumulates while it writes SQL: the bound parameters.

The query compiler and the expression compiler write into one :class:`State`, so
that parameter names are unique across the whole statement; it is the only
mutable object shared between the layers.
"""

from __future__ import annotations


class State:
    """The parameters of the statement being written (psycopg2 ``%(pN)s`` style)."""

    def __init__(self) -> None:
        self.params: dict[str, object] = {}

    def bind(self, value: object) -> str:
        """A placeholder for ``value``: no literal ever becomes SQL text."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

"""What one translation accumulates while it writes SQL: parameters and nesting depth.

The query compiler and the expression compiler write into one :class:`State`, so
that parameter names are unique across the whole statement and one depth count
covers every way a query can nest (expressions, conditions, subqueries, joins, set
operations); it is the only mutable object shared between the layers.
"""

from __future__ import annotations

from vo_service.adql import nodes as n
from vo_service.adql.errors import AdqlError

# How deeply a query may nest.  The compilers recurse (up to four Python frames a
# level), and so does PostgreSQL's planner; 100 levels stay well inside Python's
# default recursion limit of 1000 frames, even when translation runs in a worker
# thread below a web framework, and far beyond what people or tools write.
MAX_DEPTH = 100


class State:
    """The parameters of the statement being written (psycopg2 ``%(pN)s`` style)."""

    def __init__(self) -> None:
        self.params: dict[str, object] = {}
        self.depth = 0
        self.deepest = n.Pos(1, 1)  # where the innermost level entered so far starts

    def bind(self, value: object) -> str:
        """A placeholder for ``value``: no literal ever becomes SQL text."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def enter(self, pos: n.Pos) -> None:
        """One level deeper, at ``pos``; refused beyond :data:`MAX_DEPTH`."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise AdqlError(f"the query nests more than {MAX_DEPTH} levels deep here "
                            "(parentheses, function calls, subqueries, joins or set "
                            "operations inside each other); simplify it", pos.line, pos.column)
        self.deepest = pos

    def leave(self) -> None:
        self.depth -= 1

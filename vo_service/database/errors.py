"""What a database error means to the client: the one mapping by SQLSTATE.

PostgreSQL classifies every error by its SQLSTATE (appendix A of its manual).  Clients
need three answers: *your request is wrong* (400, with PostgreSQL's reason: data
exceptions, invalid input, a query too complex), *try again later* (503 with
Retry-After: the database is restarting, unreachable, out of connections, disk or
memory) and *the time limit was hit* (a cancelled statement; the message suggests
async).  Anything else is our bug (500, logged).
"""

from __future__ import annotations

import re

import psycopg2
import psycopg2.errors

from vo_service.errors import (
    FatalFault,
    QueryTimeout,
    ServiceError,
    TransientFault,
    UsageFault,
)

#: Seconds a client is asked to wait (Retry-After) when the database is unavailable.
RETRY_AFTER_S = 5

_UNAVAILABLE = ("08", "53", "57P", "58")  # connection, resources, shutdown, system
_CLIENT_CLASSES = ("22", "42", "54", "2201", "0A")  # data, syntax/access, limits, unsupported


def pg_message(exc: psycopg2.Error) -> str:
    """PostgreSQL's first message line, without the ``ERROR:`` prefix."""
    text = (exc.pgerror or str(exc)).strip().splitlines()
    first = text[0] if text else "the query failed"
    return re.sub(r"^(ERROR|FATAL):\s*", "", first)


def database_fault(exc: BaseException, *, statement_timeout_ms: int | None = None
                   ) -> ServiceError:
    """The client-facing error for ``exc`` raised by psycopg2 (or by the pool)."""
    if isinstance(exc, ServiceError):
        return exc
    code = getattr(exc, "pgcode", None) or ""
    if isinstance(exc, psycopg2.errors.QueryCanceled):
        limit = "" if statement_timeout_ms is None else f" ({statement_timeout_ms // 1000} s)"
        return QueryTimeout(f"the query ran into its time limit{limit} and was cancelled; "
                              "run it as an async job or narrow it")
    if isinstance(exc, psycopg2.errors.InsufficientPrivilege):
        return UsageFault("the query refers to something that is not published")
    if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and (
            not code or code.startswith(_UNAVAILABLE)):
        return TransientFault("the database is unavailable right now; try again in a few "
                              "seconds", retry_after=RETRY_AFTER_S)
    if code.startswith(_UNAVAILABLE):
        return TransientFault(f"the database cannot answer right now ({_message(exc)}); "
                              "try again later", retry_after=RETRY_AFTER_S)
    if code.startswith(_CLIENT_CLASSES) or isinstance(exc, psycopg2.DataError):
        return UsageFault(f"the database could not run the query: {_message(exc)}")
    return FatalFault("the database failed on this request; it has been logged")


def _message(exc: BaseException) -> str:
    return pg_message(exc) if isinstance(exc, psycopg2.Error) else str(exc)


def is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, psycopg2.Error)

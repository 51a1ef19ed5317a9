"""Log records that name their request: a request id in a context variable.

The HTTP layer sets :data:`REQUEST_ID` for each request (``routes/observe.py``); it
follows the work into worker threads (anyio copies the context), so every line logged
for a request — by a route, a service or the database layer — carries the same id,
which the client also gets in the ``X-Request-ID`` response header.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def configure(level: int = logging.INFO) -> None:
    """Log to standard error, every line with its request id (or ``-``)."""
    logging.basicConfig(level=level, format=FORMAT)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())
    logging.getLogger("alembic").setLevel(logging.WARNING)

"""Log records that name their request: a request id in a context variable, JSON lines.

The HTTP layer sets :data:`REQUEST_ID` for each request (``routes/observe.py``); it
follows the work into worker threads (anyio copies the context), so every line logged
for a request — by a route, a service or the database layer — carries the same id,
which the client also gets in the ``X-Request-ID`` response header and in error
documents.

The service logs one JSON object per line (:class:`JsonFormatter`): a log collector
(journald, Loki, Elasticsearch) reads the fields without a pattern, and a message with
a line break or a quote cannot be mistaken for two records.  Fields given to a logger
as ``extra={"fields": {...}}`` (the request line's route, status, duration...) become
top-level keys.  Interactive commands keep plain text.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: The record attribute whose mapping becomes keys of the JSON line.
FIELDS = "fields"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, request_id,
    message, the record's ``fields``, and ``exception`` (the traceback) if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
            "message": record.getMessage(),
        }
        extra = getattr(record, FIELDS, None)
        if isinstance(extra, dict):
            for key, value in extra.items():
                line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: int = logging.INFO, *, json_lines: bool = False) -> None:
    """Log to standard error, every line with its request id (or ``-``): as JSON
    objects (the server and the watcher) or as text (interactive commands)."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # warnings become records, not stray text lines
    logging.getLogger("alembic").setLevel(logging.WARNING)

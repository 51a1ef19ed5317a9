"""Streaming a query result in the requested format, batch by batch.

``stream_result`` takes the batches the executor fetches from a server-side cursor
and yields bytes; memory is bounded by one batch.  It owns the DALI result rules
that are the same for every format: MAXREC truncation with an honest OVERFLOW (the
executor fetches MAXREC+1 rows, and OVERFLOW is reported only if a row beyond MAXREC
really arrived), MAXREC=0 as metadata only, and errors while streaming.

Errors — the contract every writer keeps, the COPY path
(:mod:`vo_service.services.copy_results`) included:

* Before output: nothing is yielded until the first batch has been fetched, so a
  query that fails at once raises its own exception out of the first ``next()``, and
  the caller can still answer with a DALI error document.
* After output began the HTTP status cannot change any more, and a reader must still
  learn that the rows it got are not the whole result.  ``info.error`` is set first,
  in every format.  Then:

  - VOTable (TABLEDATA, BINARY, BINARY2) closes the data and the TABLE properly and
    appends ``<INFO name="QUERY_STATUS" value="ERROR">message</INFO>`` after the
    TABLE, inside the RESOURCE (DALI 1.1 sect. 4.4.2; VOTable 1.4 allows INFO
    there).  The document ends cleanly, because it says what happened; the writer
    logs the failure, since nothing reaches the caller — unless ``reraise=True``
    (async jobs), which raises :class:`ResultStreamFailed` after the last byte and
    leaves the logging to the caller.
  - CSV, TSV and FITS have no place for a status: they raise
    :class:`ResultStreamFailed` and yield nothing more, not even a last line end, so
    the HTTP layer must abort the response (a chunked transfer without its last
    chunk) instead of ending it cleanly; a truncated file that ends well-formed would
    read as a complete result.  The caller logs it.  (FITS yields nothing before its
    last row is in, so a failure while reading rows is still one "before output".)

A writer logs a failure exactly when it does not raise it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from queue import Empty, Full, Queue
from typing import Any

from vo_service.database.errors import database_fault, is_database_error
from vo_service.errors import ServiceError
from vo_service.result import ResultColumn
from vo_service.serialize import columns as col
from vo_service.serialize import votable
from vo_service.serialize.columns import ColumnPlan, plan_column
from vo_service.serialize.formats import OutputFormat

log = logging.getLogger(__name__)

Batch = Sequence[tuple[Any, ...]]


@dataclass
class ResultInfo:
    """What the result document says besides the rows, and what happened while writing.

    ``query`` (the user's ADQL) is echoed in an ``INFO name="QUERY"``; ``infos`` are
    further (name, value) INFOs (e.g. request parameters); ``resources`` are further
    VOTable RESOURCE elements (serialized) written after the results, such as the
    DataLink service descriptors of DataLink 1.1 sect. 4.  The writer fills in
    ``rows``, ``overflow`` and ``error`` so that the caller (e.g. the UWS runner)
    can record the outcome once the stream is exhausted.
    """

    query: str | None = None
    infos: list[tuple[str, str]] = field(default_factory=list)
    resources: bytes = b""
    rows: int = 0
    overflow: bool = False
    error: str | None = None

    def all_infos(self) -> list[tuple[str, str]]:
        head = [("QUERY", self.query)] if self.query is not None else []
        return head + list(self.infos)


class ResultStreamFailed(ServiceError):
    """A result broke off after its first bytes were produced (see the module docstring).

    ``message`` is safe to show to a user (the first line of the cause; the cause is
    chained as ``__cause__`` for the log); ``rows`` is how many rows were written.  The
    DALI fault and HTTP status are the cause's when it is a service error (a query
    cancelled at its time limit stays a TransientFault), else FatalFault: an HTTP layer
    that has not sent its headers yet can still answer with the right error document;
    one that has must let this propagate, so that the response is broken off.
    """

    def __init__(self, message: str, rows: int, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.rows = rows
        if cause is not None and is_database_error(cause):
            cause = database_fault(cause)  # SQLSTATE: 400 for data errors, 503 when away
        if isinstance(cause, ServiceError):
            self.fault, self.status = cause.fault, cause.status
            self.retry_after = cause.retry_after


def stream_failure(info: ResultInfo, exc: BaseException) -> ResultStreamFailed:
    """Record a failure after output began in ``info``; the exception that reports it."""
    info.error = failure_message(exc)
    return ResultStreamFailed(info.error, info.rows, exc)


def log_reported_failure(info: ResultInfo, exc: BaseException) -> None:
    """Log a failure that the document reports and nothing raises (VOTable, sync)."""
    log.error("result stream failed after %d rows; reported in the document: %s",
              info.rows, info.error, exc_info=exc)


def failure_message(exc: BaseException) -> str:
    """The first line only: PostgreSQL adds DETAIL/CONTEXT lines users need not see."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    return f"the query failed while its result was being written: {first}"


class _Limiter:
    """Applies MAXREC to the batch stream and notices a real overflow."""

    def __init__(self, batches: Iterator[Batch], maxrec: int | None) -> None:
        self._source = batches
        self._maxrec = maxrec
        self._done = False
        self.rows = 0
        self.overflow = False

    def next_batch(self) -> Batch | None:
        while not self._done:
            try:
                batch = next(self._source)
            except StopIteration:
                self._done = True
                return None
            if not batch:
                continue
            if self._maxrec is not None and self.rows + len(batch) > self._maxrec:
                room = self._maxrec - self.rows
                self.overflow = True
                self.close()
                batch = batch[:room]
                if not batch:
                    return None
            self.rows += len(batch)
            return batch
        return None

    def close(self) -> None:
        """Stop reading: closing a generator lets the executor close its cursor."""
        self._done = True
        closer = getattr(self._source, "close", None)
        if closer is not None:
            closer()


def _transpose(batch: Batch, width: int) -> list[Sequence[Any]]:
    columns: list[Sequence[Any]] = list(zip(*batch, strict=True))
    if len(columns) != width:
        raise ValueError(f"rows have {len(columns)} values, the result declares {width} columns")
    return columns


class _Writer:
    """The three parts every streamed format has.

    ``reports_errors``: the format can say in its own data that it was cut short
    (VOTable); the others raise instead (module docstring).
    """

    reports_errors = False

    def __init__(self, plans: Sequence[ColumnPlan], info: ResultInfo) -> None:
        self.plans = plans
        self.info = info

    def head(self) -> bytes:
        raise NotImplementedError

    def rows(self, columns: list[Sequence[Any]]) -> bytes:
        raise NotImplementedError

    def tail(self, overflow: bool, error: str | None) -> bytes:
        raise NotImplementedError


class _VOTableWriter(_Writer):
    reports_errors = True

    def __init__(self, plans: Sequence[ColumnPlan], info: ResultInfo, serialization: str
                 ) -> None:
        super().__init__(plans, info)
        self.serialization = serialization
        self._head, self._close_data = votable.document_parts(
            plans, serialization, info.all_infos())
        self._base64 = votable.Base64Lines()

    def head(self) -> bytes:
        return self._head

    def rows(self, columns: list[Sequence[Any]]) -> bytes:
        if self.serialization == "TABLEDATA":
            return votable.tabledata_rows(self.plans, columns)
        raw = votable.binary_rows(self.plans, columns,
                                  binary2=self.serialization == "BINARY2")
        return self._base64.feed(raw)

    def tail(self, overflow: bool, error: str | None) -> bytes:
        rest = self._base64.finish() if self.serialization != "TABLEDATA" else b""
        status = "ERROR" if error is not None else ("OVERFLOW" if overflow else None)
        message = error if error is not None else (
            "the result was truncated at MAXREC rows" if overflow else None)
        return rest + self._close_data + votable.trailer(status, message,
                                                          self.info.resources)


class _DelimitedWriter(_Writer):
    """CSV and TSV: a header line of names, then one line per row.

    Only text columns can hold a separator, quote or line break (numbers, timestamps
    and DALI arrays cannot), so ``clean`` (quoting for CSV, blanking for TSV) is
    applied per text column on the joined column: most columns need no per-cell work.
    ``clean`` also gets the values, so that CSV can tell an empty string from NULL.

    ``blank_row``: what a one-column row holding NULL is written as instead of an empty
    line, which CSV readers (astropy, pandas) skip, losing the row; CSV writes it as
    an empty string (:data:`CSV_BLANK_ROW`), TSV has no quoting and keeps the empty line.
    """

    def __init__(self, plans: Sequence[ColumnPlan], info: ResultInfo, separator: str,
                 newline: str, clean: Callable[[list[str], Sequence[Any]], list[str]],
                 blank_row: str = "") -> None:
        super().__init__(plans, info)
        self.separator = separator
        self.newline = newline
        self.clean = clean
        self.blank_row = blank_row if len(plans) == 1 else ""

    def head(self) -> bytes:
        names = [p.column.name for p in self.plans]
        names = self.clean(names, names)
        return (self.separator.join(names) + self.newline).encode()

    def rows(self, columns: list[Sequence[Any]]) -> bytes:
        cells = []
        for plan, column in zip(self.plans, columns, strict=True):
            texts = votable.text_cells(plan, column, true_false=("true", "false"))
            if plan.kind in (col.CHAR, col.UNICODE):
                texts = self.clean(texts, column)
            cells.append(texts)
        if self.blank_row:
            cells[0] = [c or self.blank_row for c in cells[0]]
        lines = map(self.separator.join, zip(*cells, strict=True))
        return (self.newline.join(lines) + self.newline).encode()

    def tail(self, overflow: bool, error: str | None) -> bytes:
        return b""


CSV_BLANK_ROW = '""'
"""A one-column CSV row holding NULL: an empty line would be skipped by readers."""


def csv_quote(cells: list[str], values: Sequence[Any]) -> list[str]:
    """RFC 4180: quote the cells holding a comma, quote or line break, and empty
    strings, so that an empty cell means NULL (as PostgreSQL's CSV writes them)."""
    joined = "\x00".join(cells)
    if not ("," in joined or '"' in joined or "\n" in joined or "\r" in joined
            or "" in cells):
        return cells
    return [f'"{c.replace(chr(34), chr(34) * 2)}"'
            if ("," in c or '"' in c or "\n" in c or "\r" in c or (c == "" and v is not None))
            else c for c, v in zip(cells, values, strict=True)]


def _tsv_clean(cells: list[str], values: Sequence[Any]) -> list[str]:
    """IANA text/tab-separated-values: a value cannot hold TAB or line breaks, so those
    become spaces (TAP 1.1 sect. 5.1.2 forbids TAB in values)."""
    joined = "\x00".join(cells)
    if "\t" not in joined and "\n" not in joined and "\r" not in joined:
        return cells
    return [c.replace("\r\n", " ").replace("\t", " ").replace("\n", " ").replace("\r", " ")
            for c in cells]


def _writer(fmt: OutputFormat, plans: Sequence[ColumnPlan], info: ResultInfo) -> _Writer:
    if fmt.serialization is not None:
        return _VOTableWriter(plans, info, fmt.serialization)
    if fmt.name == "csv":  # RFC 4180: CRLF line ends
        return _DelimitedWriter(plans, info, ",", "\r\n", csv_quote, CSV_BLANK_ROW)
    if fmt.name == "tsv":
        return _DelimitedWriter(plans, info, "\t", "\n", _tsv_clean)
    raise ValueError(f"no streaming writer for {fmt.name}")


def stream_result(
    fmt: OutputFormat,
    columns: Sequence[ResultColumn],
    batches: Iterator[Batch],
    *,
    maxrec: int | None,
    info: ResultInfo,
    reraise: bool = False,
) -> Generator[bytes, None, None]:
    """Yield the result document in ``fmt``; see the module docstring for errors.

    ``batches`` yields lists of row tuples (psycopg2 ``fetchmany``); at most
    ``maxrec`` rows are written.  If ``batches`` has a ``close`` method (a generator),
    it is called as soon as no more rows are needed, also when the consumer stops
    early (a client that disconnects), so the executor can close its cursor.
    """
    plans = [plan_column(c) for c in columns]
    if fmt.name == "fits":
        yield from _drive_fits(plans, batches, maxrec, info)
        return
    writer = _writer(fmt, plans, info)
    yield from _drive(writer, batches, maxrec, info, reraise, len(plans))


def _drive(writer: _Writer, batches: Iterator[Batch], maxrec: int | None, info: ResultInfo,
           reraise: bool, width: int) -> Iterator[bytes]:
    limiter = _Limiter(iter(batches), maxrec)
    try:
        batch = limiter.next_batch()
    except BaseException:
        limiter.close()
        raise
    yield writer.head()
    failure: Exception | None = None
    try:
        while batch is not None:
            chunk = writer.rows(_transpose(batch, width))
            info.rows += len(batch)
            if chunk:
                yield chunk
            batch = limiter.next_batch()
    except Exception as exc:  # a failure mid-stream: see the module docstring
        failure = exc
    finally:
        limiter.close()
    if failure is None:
        info.overflow = limiter.overflow
        yield writer.tail(info.overflow, None)
        return
    error = stream_failure(info, failure)
    if not writer.reports_errors:
        raise error from failure
    yield writer.tail(False, info.error)
    if reraise:
        raise error from failure
    log_reported_failure(info, failure)


def _drive_fits(plans: Sequence[ColumnPlan], batches: Iterator[Batch], maxrec: int | None,
                info: ResultInfo) -> Iterator[bytes]:
    """FITS is spooled: nothing is yielded before the last row is in, so a failure
    while reading rows is a failure before output and raises the query's own exception
    (the caller may still answer with an error document); one while the spool is
    written out raises :class:`ResultStreamFailed`."""
    from vo_service.serialize.fits import write_fits

    limiter = _Limiter(iter(batches), maxrec)

    def transposed() -> Iterator[list[Sequence[Any]]]:
        while (batch := limiter.next_batch()) is not None:
            yield _transpose(batch, len(plans))

    started = False
    try:
        for chunk in write_fits(plans, transposed(), overflow=lambda: limiter.overflow,
                                query=info.query):
            started = True
            yield chunk
    except Exception as exc:
        if not started:
            raise
        info.rows = limiter.rows
        raise stream_failure(info, exc) from exc
    finally:
        limiter.close()
    info.rows = limiter.rows
    info.overflow = limiter.overflow


# PostgreSQL type OIDs of timestamp without time zone and date.
TEXT_TIMESTAMP_OIDS = (1114, 1082)


def register_text_timestamps(cursor: Any) -> None:
    """Let a psycopg2 cursor hand timestamps and dates over as PostgreSQL's text.

    Building ``datetime`` objects only to print them again costs more than the rest of
    a row's conversion; the writers turn '2020-01-02 03:04:05' into the DALI form with
    one join/replace per batch.  Scoped to the cursor, so other code on the same
    pooled connection still gets datetimes.
    """
    import psycopg2.extensions

    caster = psycopg2.extensions.new_type(TEXT_TIMESTAMP_OIDS, "DALI_TIMESTAMP_TEXT",
                                          lambda value, _cursor: value)
    psycopg2.extensions.register_type(caster, cursor)


_DONE = object()


def prefetch(batches: Iterator[Batch], depth: int = 2) -> Generator[Batch, None, None]:
    """Fetch the next batches in a thread while the current one is being written.

    psycopg2 releases the GIL while it waits for PostgreSQL, so the database's share
    of the work (pgSphere's text output of s_region is the costliest column) overlaps
    with the writer: the benchmark shows about twice the end-to-end rate on two cores.
    At most ``depth`` batches wait in the queue, so memory stays flat.  Closing this
    generator (client gone, MAXREC reached) stops the thread, which then closes
    ``batches`` itself — in the thread that iterated it, as generators require.
    """
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def worker() -> None:
        source = iter(batches)
        try:
            for batch in source:
                if not offer(batch):
                    break
            else:
                offer(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)
        finally:
            closer = getattr(source, "close", None)
            if closer is not None:
                closer()

    thread = threading.Thread(target=worker, name="result-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = queue.get(timeout=0.1)
            except Empty:
                if not thread.is_alive() and queue.empty():
                    raise RuntimeError("the batch prefetch thread ended unexpectedly") from None
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()

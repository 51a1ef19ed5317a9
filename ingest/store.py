"""The ingest side of the database: writing a batch of rows, and what is known already.

One batch = one transaction over ``ivoa.obscore``, ``lick.files`` and
``ingest.rejected_files``: the caller commits or rolls back, so a crash leaves the
whole batch or nothing.  Rows travel by COPY into per-session temporary staging
tables, then one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` per table makes the
write idempotent; COPY costs a fraction of the per-value quoting of a VALUES list,
which matters with ~15 kB headers and thousands of rows a second.  Where the role may
not create temporary tables, the same upsert runs from a VALUES list instead.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql

from tap_schema.declaration import FILES, OBSCORE
from tap_schema.model import Table

Row = dict[str, Any]


@dataclass(frozen=True)
class Known:
    """Size and mtime recorded for a path, and whether it is a rejected file."""

    size: int
    mtime: datetime
    rejected: bool


@dataclass(frozen=True)
class Rejected:
    path: str
    size: int
    mtime: datetime
    reason: str
    detail: str


def known(cur: psycopg2.extensions.cursor, paths: Sequence[str]) -> dict[str, Known]:
    """What the database holds for ``paths`` (ingested rows win over rejections)."""
    found: dict[str, Known] = {}
    for start in range(0, len(paths), 5000):
        chunk = list(paths[start:start + 5000])
        cur.execute("SELECT path, file_size, file_mtime FROM lick.files"
                    " WHERE path = ANY(%s)", (chunk,))
        for path, size, mtime in cur.fetchall():
            found[path] = Known(size, mtime, False)
        cur.execute("SELECT path, size, mtime FROM ingest.rejected_files"
                    " WHERE path = ANY(%s)", (chunk,))
        for path, size, mtime in cur.fetchall():
            found.setdefault(path, Known(size, mtime, True))
    return found


# ---------------------------------------------------------------- COPY text encoding


_ESCAPES = ((b"\\", b"\\\\"), (b"\n", b"\\n"), (b"\t", b"\\t"), (b"\r", b"\\r"))


def _escape(text: str) -> str:
    if not ("\\" in text or "\n" in text or "\t" in text or "\r" in text):
        return text
    # A str.replace that changes the length is slow on long text (22 us for the 250
    # newlines of a 20 kB header, measured); bytes.replace is four times faster.
    data = text.encode()
    for special, escaped in _ESCAPES:
        if special in data:
            data = data.replace(special, escaped)
    return data.decode()


def _timestamp(value: datetime) -> str:
    if value.tzinfo is not None:
        # Storage columns are UTC timestamps without time zone.
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ")


def _array(values: Sequence[int | None]) -> str:
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


def _double(value: float) -> str:
    # repr of a float is its shortest exact form; PostgreSQL reads 'nan' and 'inf' too.
    return repr(float(value))


Encoder = Callable[[Any], str]
# One encoder per storage type, chosen once per column: a type switch per value cost
# more than the rest of the row building.
_ENCODERS: dict[str, Encoder] = {
    "text": lambda v: _escape(v if isinstance(v, str) else str(v)),
    "double precision": _double,
    "bigint": str,
    "integer": str,
    "integer[]": _array,
    "timestamp without time zone": _timestamp,
    "date": date.isoformat,
    "spoly": str,
    "boolean": lambda v: "t" if v else "f",
}


def encoders(table: Table, names: Sequence[str]) -> list[Encoder]:
    """The COPY text encoder of each column (KeyError: a storage type to add here)."""
    return [_ENCODERS[_storage(table, name)] for name in names]


def copy_text(rows: Iterable[Sequence[Any]], encode: Sequence[Encoder]) -> str:
    """Rows in PostgreSQL's COPY text format (NULL as \\N)."""
    return "".join(
        "\t".join(["\\N" if v is None else e(v) for e, v in zip(encode, row, strict=True)])
        + "\n" for row in rows)


# ---------------------------------------------------------------- statements


def columns(table: Table) -> list[str]:
    """Columns ingest writes: all but generated identities."""
    return [c.name for c in table.columns
            if not c.pg_type or not ("IDENTITY" in c.pg_type or "GENERATED ALWAYS AS" in c.pg_type)]


def _storage(table: Table, name: str) -> str:
    storage = table.column(name).storage_type
    return "bigint" if "IDENTITY" in storage else storage


class BatchWriter:
    """Writes batches for one connection; holds the SQL built from the declaration."""

    def __init__(self) -> None:
        self._cols = {OBSCORE.name: columns(OBSCORE), FILES.name: columns(FILES)}
        self._encoders = {t.name: encoders(t, self._cols[t.name]) for t in (OBSCORE, FILES)}
        self._staged: set[int] = set()  # connections whose staging tables exist
        self._no_temp: set[int] = set()

    @staticmethod
    def _stage_name(table: Table) -> str:
        return f"lick_ingest_stage_{table.name}"

    def _upsert_select(self, table: Table, conflict: str) -> sql.Composed:
        names = self._cols[table.name]
        ident = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n))
                                     for n in names if n != conflict)
        return sql.SQL("INSERT INTO {}.{} ({}) SELECT {} FROM {} ON CONFLICT ({})"
                       " DO UPDATE SET {}").format(
            sql.Identifier(table.schema), sql.Identifier(table.name), ident, ident,
            sql.Identifier(self._stage_name(table)), sql.Identifier(conflict), updates)

    def _upsert_values(self, table: Table, conflict: str) -> tuple[sql.Composed, str]:
        names = self._cols[table.name]
        updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n))
                                     for n in names if n != conflict)
        statement = sql.SQL("INSERT INTO {}.{} ({}) VALUES %s ON CONFLICT ({})"
                            " DO UPDATE SET {}").format(
            sql.Identifier(table.schema), sql.Identifier(table.name),
            sql.SQL(", ").join(sql.Identifier(n) for n in names), sql.Identifier(conflict),
            updates)
        casts = []
        for name in names:
            storage = _storage(table, name)
            plain = storage in ("text", "bigint", "integer", "double precision")
            casts.append("%s" if plain else f"%s::{storage}")
        return statement, "(" + ", ".join(casts) + ")"

    def prepare(self, conn: psycopg2.extensions.connection) -> None:
        """Create the session's staging tables (in their own transaction)."""
        key = id(conn)
        if key in self._staged or key in self._no_temp:
            return
        try:
            with conn.cursor() as cur:
                for table in (OBSCORE, FILES):
                    body = sql.SQL(", ").join(
                        sql.SQL("{} {}").format(sql.Identifier(n),
                                                sql.SQL(_storage(table, n)))
                        for n in self._cols[table.name])
                    cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({})"
                                        " ON COMMIT DELETE ROWS").format(
                        sql.Identifier(self._stage_name(table)), body))
            conn.commit()
            self._staged.add(key)
        except psycopg2.errors.InsufficientPrivilege:
            conn.rollback()
            self._no_temp.add(key)

    def forget(self, conn: psycopg2.extensions.connection) -> None:
        self._staged.discard(id(conn))
        self._no_temp.discard(id(conn))

    def _copy(self, cur: psycopg2.extensions.cursor, target: sql.Composable, table: Table,
              values: Sequence[Sequence[Any]]) -> None:
        names = self._cols[table.name]
        # Bytes, not str: psycopg2 encodes a text stream chunk by chunk, which cost 25 us
        # per 20 kB header row against 8 us for bytes (measured).
        cur.copy_expert(sql.SQL("COPY {} ({}) FROM STDIN").format(
            target, sql.SQL(", ").join(sql.Identifier(n) for n in names)),
            io.BytesIO(copy_text(values, self._encoders[table.name]).encode()))

    def _rows(self, cur: psycopg2.extensions.cursor, table: Table, conflict: str,
              rows: Sequence[Row], staged: bool) -> None:
        names = self._cols[table.name]
        values = [[row.get(n) for n in names] for row in rows]
        if staged:
            self._copy(cur, sql.Identifier(self._stage_name(table)), table, values)
            cur.execute(self._upsert_select(table, conflict))
        else:
            statement, template = self._upsert_values(table, conflict)
            psycopg2.extras.execute_values(cur, statement, values, template=template,
                                           page_size=max(len(values), 1))

    def _direct(self, cur: psycopg2.extensions.cursor, good: Sequence[tuple[Row, Row]]) -> bool:
        """COPY straight into the tables (rows believed new); False on a conflict."""
        cur.execute("SAVEPOINT lick_ingest_direct")
        try:
            for table, rows in ((OBSCORE, [o for o, _ in good]), (FILES, [f for _, f in good])):
                names = self._cols[table.name]
                self._copy(cur, sql.Identifier(table.schema, table.name), table,
                           [[row.get(n) for n in names] for row in rows])
        except psycopg2.errors.UniqueViolation:
            # Someone else (the watcher, another run) wrote one of them meanwhile.
            cur.execute("ROLLBACK TO SAVEPOINT lick_ingest_direct")
            return False
        cur.execute("RELEASE SAVEPOINT lick_ingest_direct")
        return True

    def write(self, conn: psycopg2.extensions.connection,
              good: Sequence[tuple[Row, Row]], bad: Sequence[Rejected], *,
              all_new: bool = False) -> None:
        """Write one batch inside the current transaction; the caller commits.

        ``all_new`` says that none of the rows existed when the run compared disk and
        database: they are then COPied straight into the tables (half the work of
        staging and upserting), falling back to the upsert if one appeared since.
        """
        self.prepare(conn)
        staged = id(conn) in self._staged
        with conn.cursor() as cur:
            if good and not (all_new and self._direct(cur, good)):
                self._rows(cur, OBSCORE, "obs_publisher_did", [o for o, _ in good], staged)
                self._rows(cur, FILES, "path", [f for _, f in good], staged)
            if good:
                cur.execute("DELETE FROM ingest.rejected_files WHERE path = ANY(%s)",
                            ([f["path"] for _, f in good],))
            if bad:
                paths = [r.path for r in bad]
                # A file that became unreadable no longer matches its rows: they go (the
                # archive row by cascade), its rejection stays until the file changes.
                cur.execute("DELETE FROM ivoa.obscore WHERE obs_publisher_did IN"
                            " (SELECT obs_publisher_did FROM lick.files"
                            " WHERE path = ANY(%s))", (paths,))
                psycopg2.extras.execute_values(
                    cur,
                    "INSERT INTO ingest.rejected_files (path, size, mtime, reason, detail)"
                    " VALUES %s ON CONFLICT (path) DO UPDATE SET size = EXCLUDED.size,"
                    " mtime = EXCLUDED.mtime, reason = EXCLUDED.reason,"
                    " detail = EXCLUDED.detail, last_tried = now()",
                    [(r.path, r.size, r.mtime, r.reason, r.detail) for r in bad])

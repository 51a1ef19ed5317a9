"""Ingest bookkeeping: rejected files, per-directory scan state, override files in force.

The ``ingest`` schema is never published (no TAP_SCHEMA rows, no grant to the query
role).  Paths are relative to the archive root, like ``lick.files.path``; mtimes
are UTC timestamps truncated to microseconds, as in ``lick.files.file_mtime``, so
that disk and database compare exactly.
"""

from alembic import op

revision = "0002_ingest"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS ingest")
    # A file that could not be read at all: kept with its reason, retried when its
    # size or mtime changes, removed once it is ingested.
    op.execute("""CREATE TABLE ingest.rejected_files (
    path text PRIMARY KEY,
    size bigint NOT NULL,
    mtime timestamp without time zone NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL DEFAULT '',
    first_seen timestamp with time zone NOT NULL DEFAULT now(),
    last_tried timestamp with time zone NOT NULL DEFAULT now()
)""")
    op.execute("CREATE INDEX rejected_files_reason_idx ON ingest.rejected_files (reason)")
    # The watcher's memory of each instrument directory (YYYY-MM/DD/<dir>): the
    # directory mtime last seen, so that a poll only lists directories that changed.
    op.execute("""CREATE TABLE ingest.directories (
    path text PRIMARY KEY,
    mtime timestamp without time zone,
    file_count integer NOT NULL DEFAULT 0,
    scanned_at timestamp with time zone NOT NULL DEFAULT now()
)""")
    # The override file whose rules were last applied to a directory; a different
    # name, size or mtime on disk means the access rules must be re-applied.
    op.execute("""CREATE TABLE ingest.override_files (
    directory text PRIMARY KEY,
    name text,
    size bigint,
    mtime timestamp without time zone,
    applied_at timestamp with time zone NOT NULL DEFAULT now()
)""")


def downgrade() -> None:
    op.execute("DROP SCHEMA ingest CASCADE")

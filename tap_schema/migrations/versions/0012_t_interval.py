"""[t_min, t_max] GiST-indexed as a flat box, for interval overlap (SIA TIME).

A btree on t_min or on t_max serves only one side of ``t_min <= hi AND t_max >= lo``:
SIA TIME of one recent night on the synthetic archive of 1M rows (bench/sia.py)
scanned the 57,591 rows after it, 97 ms; an old night would scan nearly every row.
With this index: 8 ms.  See tap_schema.declaration.T_INTERVAL; the superuser set-up
(auth.policy) makes point(), box() and box && box LEAKPROOF so that the index serves
under row-level security.  The build takes the table's write lock (ingest waits):
about 3 s for 1M rows on the development machine.
"""

from alembic import op

revision = "0012_t_interval"
down_revision = "0011_safe_circle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX obscore_t_interval_idx ON ivoa.obscore USING gist"
               " (box(point(t_min, 0), point(t_max, 0)))")


def downgrade() -> None:
    op.execute("DROP INDEX ivoa.obscore_t_interval_idx")

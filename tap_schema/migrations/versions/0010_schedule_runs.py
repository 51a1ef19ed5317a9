"""The scheduling runs whose access rules were last applied (``ingest.schedule_changes``).

The watcher compares the scheduling database's runs with these rows: a run added,
removed or changed (observers, nights, telescope, release date, program) makes it
re-apply the access rules to the nights the run covered and covers.
"""

from alembic import op

revision = "0010_schedule_runs"
down_revision = "0009_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE ingest.schedule_runs (
    run_id text PRIMARY KEY,
    telescope text NOT NULL,
    first_night date NOT NULL,
    last_night date NOT NULL,
    fingerprint text NOT NULL,
    applied_at timestamp with time zone NOT NULL DEFAULT now()
)""")


def downgrade() -> None:
    op.execute("DROP TABLE ingest.schedule_runs")

"""UWS resource limits: who created an anonymous job, and the bytes its uploads use.

``creator_address`` lets the service cap unfinished anonymous jobs per client address
(one client cannot use up the anonymous share); ``upload_bytes`` counts, with the
results' sizes, against the per-owner and total storage quotas.  Two partial indexes
keep the cap counts and the expiry of never-run (PENDING) jobs cheap.
"""

from alembic import op

revision = "0007_uws_limits"
down_revision = "0006_s_region_bound"
branch_labels = None
depends_on = None

UNFINISHED = "('PENDING', 'QUEUED', 'EXECUTING', 'HELD', 'SUSPENDED')"

UPGRADE_SQL: tuple[str, ...] = (
    "ALTER TABLE uws.jobs ADD COLUMN creator_address text",
    "ALTER TABLE uws.jobs ADD COLUMN upload_bytes bigint NOT NULL DEFAULT 0 "
    "CHECK (upload_bytes >= 0)",
    f"CREATE INDEX jobs_unfinished ON uws.jobs (owner_id, creator_address) "
    f"WHERE phase IN {UNFINISHED}",
    "CREATE INDEX jobs_pending ON uws.jobs (creation_time) WHERE phase = 'PENDING'",
)

DOWNGRADE_SQL: tuple[str, ...] = (
    "DROP INDEX uws.jobs_pending",
    "DROP INDEX uws.jobs_unfinished",
    "ALTER TABLE uws.jobs DROP COLUMN upload_bytes",
    "ALTER TABLE uws.jobs DROP COLUMN creator_address",
)


def upgrade() -> None:
    for statement in UPGRADE_SQL:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE_SQL:
        op.execute(statement)

"""Indexes for the auth clean-up and for recording a throttled login once per window.

``auth.housekeeping.purge`` deletes login attempts by age: without an index on ``at``
alone (the existing ones lead with the login or the address) every batch would scan
the table.  A throttled login records a ``login_throttled`` event only when none exists
for that login and address within the throttle window (``auth.login``): the partial
index answers that from the few throttled events instead of the whole audit log.
Sessions (``expires_at``) and audit events (``at``) are indexed since ``0003_auth``.
"""

from alembic import op

revision = "0008_auth_housekeeping"
down_revision = "0007_uws_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX login_attempts_at_idx ON auth.login_attempts (at)")
    op.execute("CREATE INDEX audit_log_throttled_idx ON auth.audit_log"
               " (lower(actor_login), address, at) WHERE event = 'login_throttled'")


def downgrade() -> None:
    op.execute("DROP INDEX auth.audit_log_throttled_idx")
    op.execute("DROP INDEX auth.login_attempts_at_idx")

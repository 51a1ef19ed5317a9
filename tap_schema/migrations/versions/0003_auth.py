"""PLACEHOLDER so the revision chain is complete; the engineer owning 0003_auth replaces this whole file."""

revision = "0003_auth"
down_revision = "0002_ingest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

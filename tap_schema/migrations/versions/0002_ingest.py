"""PLACEHOLDER so the revision chain is complete; the engineer owning 0002_ingest replaces this whole file."""

revision = "0002_ingest"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""s_region indexed through a stored bounding circle instead of pgSphere's polygon GiST.

A polygon's GiST key cost ~200 us per row inserted, more than all other ingest work in
PostgreSQL together; the circle around (s_ra, s_dec) of diameter s_fov holds the region
(CHECKed here) and costs a few us.  The ADQL translator tests the circle first
(tap_schema.declaration.S_REGION_BOUND).
"""

from alembic import op

revision = "0006_s_region_bound"
down_revision = "0005_tap_schema_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ivoa.obscore_s_region_idx")
    op.execute("ALTER TABLE ivoa.obscore ADD COLUMN s_region_bound scircle GENERATED ALWAYS AS"
               " (CASE WHEN s_region IS NOT NULL THEN scircle(spoint(radians(s_ra),"
               " radians(s_dec)), radians(s_fov) / 2 + 1e-8) END) STORED")
    op.execute("ALTER TABLE ivoa.obscore ADD CONSTRAINT obscore_s_region_bounded CHECK ("
               "s_region IS NULL OR (s_region @ s_region_bound) IS TRUE)")
    op.execute("CREATE INDEX obscore_s_region_bound_idx ON ivoa.obscore"
               " USING gist (s_region_bound)")


def downgrade() -> None:
    op.execute("DROP INDEX ivoa.obscore_s_region_bound_idx")
    op.execute("ALTER TABLE ivoa.obscore DROP CONSTRAINT obscore_s_region_bounded")
    op.execute("ALTER TABLE ivoa.obscore DROP COLUMN s_region_bound")
    op.execute("CREATE INDEX obscore_s_region_idx ON ivoa.obscore USING gist (s_region)")

"""The publishing registry: published records, the archive's coverage, a staleness mark.

``registry.records`` holds every VOResource record the OAI-PMH endpoint has ever
published, with the hash of its content: a record whose content changes gets a new
datestamp (and ``updated`` date), and a record the service no longer generates stays
as *deleted* with the datestamp of its deletion (OAI-PMH ``deletedRecord=persistent``).
``registry.coverage`` keeps the coverage of the public data per collection (the MOC,
time and spectral spans), written by the refresher and read by the records and the
coverage endpoint.

Any change of ``ivoa.obscore`` (ingest, an access recompute, housekeeping marking
newly public rows) sets ``registry.state.coverage_stale`` through statement-level
triggers that look at the changed rows only (a statement that changed nothing, such
as housekeeping's update when nothing became public, does not mark it).  Internal
tables: owned by the owner role, not readable by the query role.
"""

from alembic import op

revision = "0009_registry"
down_revision = "0008_auth_housekeeping"
branch_labels = None
depends_on = None

UPGRADE_SQL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS registry",
    """CREATE TABLE registry.records (
    identifier text PRIMARY KEY,
    resource_type text NOT NULL,
    set_specs text[] NOT NULL DEFAULT '{}',
    created timestamptz NOT NULL,
    datestamp timestamptz NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    content_hash text NOT NULL,
    title text NOT NULL,
    record text NOT NULL
)""",
    "CREATE INDEX records_datestamp ON registry.records (datestamp, identifier)",
    """CREATE TABLE registry.coverage (
    collection text PRIMARY KEY,
    moc text NOT NULL,
    moc_order integer NOT NULL,
    t_min double precision,
    t_max double precision,
    em_min double precision,
    em_max double precision,
    instruments text[] NOT NULL DEFAULT '{}',
    facilities text[] NOT NULL DEFAULT '{}',
    product_types text[] NOT NULL DEFAULT '{}',
    datasets bigint NOT NULL,
    computed_at timestamptz NOT NULL
)""",
    """CREATE TABLE registry.state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    coverage_stale boolean NOT NULL DEFAULT true,
    coverage_computed_at timestamptz
)""",
    "INSERT INTO registry.state (singleton, coverage_stale) VALUES (true, true)",
    """CREATE FUNCTION registry.mark_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        UPDATE registry.state SET coverage_stale = true WHERE NOT coverage_stale;
    END IF;
    RETURN NULL;
END
$$""",
    """CREATE TRIGGER obscore_inserted_coverage AFTER INSERT ON ivoa.obscore
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION registry.mark_stale()""",
    """CREATE TRIGGER obscore_updated_coverage AFTER UPDATE ON ivoa.obscore
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION registry.mark_stale()""",
    """CREATE TRIGGER obscore_deleted_coverage AFTER DELETE ON ivoa.obscore
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION registry.mark_stale()""",
)

DOWNGRADE_SQL: tuple[str, ...] = (
    "DROP TRIGGER obscore_deleted_coverage ON ivoa.obscore",
    "DROP TRIGGER obscore_updated_coverage ON ivoa.obscore",
    "DROP TRIGGER obscore_inserted_coverage ON ivoa.obscore",
    "DROP SCHEMA registry CASCADE",
)


def upgrade() -> None:
    for statement in UPGRADE_SQL:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE_SQL:
        op.execute(statement)

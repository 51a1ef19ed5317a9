"""UWS 1.1 asynchronous jobs: schema ``uws`` (jobs, parameters, results).

Internal tables, never published in TAP_SCHEMA and not readable by the query role
(job lists are private to their owner).  A trigger NOTIFYs channel ``uws_phase`` with
``"<job_id> <phase>"`` on every insert and phase change so that runners wake up on new
QUEUED jobs and UWS WAIT requests return as soon as a phase changes, from whichever
server instance made the change.
"""

from alembic import op

revision = "0004_uws"
down_revision = "0003_auth"
branch_labels = None
depends_on = None

UPGRADE_SQL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS uws",
    """CREATE TABLE uws.jobs (
    job_id text PRIMARY KEY,
    run_id text,
    owner_id text,
    phase text NOT NULL CHECK (phase IN ('PENDING', 'QUEUED', 'EXECUTING', 'COMPLETED',
        'ERROR', 'ABORTED', 'UNKNOWN', 'HELD', 'SUSPENDED', 'ARCHIVED')),
    creation_time timestamptz NOT NULL,
    start_time timestamptz,
    end_time timestamptz,
    quote timestamptz,
    execution_duration integer NOT NULL CHECK (execution_duration >= 0),
    destruction timestamptz NOT NULL,
    error_type text CHECK (error_type IN ('transient', 'fatal')),
    error_message text,
    runner_key integer,
    CHECK ((error_type IS NULL) = (error_message IS NULL))
)""",
    "CREATE INDEX jobs_owner_creation ON uws.jobs (owner_id, creation_time)",
    "CREATE INDEX jobs_destruction ON uws.jobs (destruction)",
    "CREATE INDEX jobs_queue ON uws.jobs (creation_time) WHERE phase = 'QUEUED'",
    "CREATE INDEX jobs_executing ON uws.jobs (runner_key) WHERE phase = 'EXECUTING'",
    """CREATE TABLE uws.parameters (
    job_id text NOT NULL REFERENCES uws.jobs (job_id) ON DELETE CASCADE,
    position integer NOT NULL,
    name text NOT NULL CHECK (name = upper(name)),
    value text NOT NULL,
    PRIMARY KEY (job_id, position)
)""",
    """CREATE TABLE uws.results (
    job_id text NOT NULL REFERENCES uws.jobs (job_id) ON DELETE CASCADE,
    position integer NOT NULL,
    result_id text NOT NULL,
    mime_type text NOT NULL,
    filename text,
    size bigint,
    href text,
    PRIMARY KEY (job_id, position),
    UNIQUE (job_id, result_id)
)""",
    """CREATE FUNCTION uws.notify_phase() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('uws_phase', NEW.job_id || ' ' || NEW.phase);
    RETURN NULL;
END
$$""",
    """CREATE TRIGGER jobs_notify_phase
    AFTER INSERT OR UPDATE OF phase ON uws.jobs
    FOR EACH ROW EXECUTE FUNCTION uws.notify_phase()""",
)

DOWNGRADE_SQL: tuple[str, ...] = ("DROP SCHEMA uws CASCADE",)


def upgrade() -> None:
    for statement in UPGRADE_SQL:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE_SQL:
        op.execute(statement)

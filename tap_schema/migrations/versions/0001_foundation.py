"""The published tables: ivoa.obscore, lick.files and TAP_SCHEMA 1.1.

A frozen copy of what ``tap_schema.ddl.create_statements()`` produced when this
revision was written; later declaration changes need a new revision (the test
``test_migrations_match_declaration`` fails until one exists).
"""

from alembic import op

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS ivoa")
    op.execute("CREATE SCHEMA IF NOT EXISTS lick")
    op.execute("CREATE SCHEMA IF NOT EXISTS tap_schema")
    op.execute("""CREATE TABLE ivoa.obscore (
    dataproduct_type text,
    calib_level integer NOT NULL,
    obs_collection text NOT NULL,
    obs_id text NOT NULL,
    obs_publisher_did text NOT NULL,
    access_url text,
    access_format text,
    access_estsize bigint,
    target_name text,
    s_ra double precision,
    s_dec double precision,
    s_fov double precision,
    s_region spoly,
    s_resolution double precision,
    s_xel1 bigint,
    s_xel2 bigint,
    t_min double precision,
    t_max double precision,
    t_exptime double precision,
    t_resolution double precision,
    t_xel bigint,
    em_min double precision,
    em_max double precision,
    em_res_power double precision,
    em_xel bigint,
    o_ucd text,
    pol_states text,
    pol_xel bigint,
    facility_name text,
    instrument_name text,
    obs_release_date timestamp without time zone,
    data_rights text,
    owner_ids integer[] DEFAULT '{}' NOT NULL,
    PRIMARY KEY (obs_publisher_did)
)""")
    op.execute("CREATE INDEX obscore_s_region_idx ON ivoa.obscore USING gist (s_region)")
    op.execute("CREATE INDEX obscore_s_point_idx ON ivoa.obscore USING gist (spoint(radians(s_ra), radians(s_dec)))")
    op.execute("CREATE INDEX obscore_t_min_idx ON ivoa.obscore USING btree (t_min)")
    op.execute("CREATE INDEX obscore_t_max_idx ON ivoa.obscore USING btree (t_max)")
    op.execute("CREATE INDEX obscore_instrument_name_idx ON ivoa.obscore USING btree (instrument_name)")
    op.execute("CREATE INDEX obscore_facility_name_idx ON ivoa.obscore USING btree (facility_name)")
    op.execute("CREATE INDEX obscore_target_name_idx ON ivoa.obscore USING btree (target_name)")
    op.execute("CREATE INDEX obscore_obs_id_idx ON ivoa.obscore USING btree (obs_id)")
    op.execute("CREATE INDEX obscore_release_date_idx ON ivoa.obscore USING btree (obs_release_date)")
    op.execute("CREATE INDEX obscore_dataproduct_type_idx ON ivoa.obscore USING btree (dataproduct_type)")
    op.execute("""CREATE TABLE lick.files (
    file_id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    obs_publisher_did text NOT NULL,
    path text NOT NULL,
    filename text NOT NULL,
    night date NOT NULL,
    instrument_dir text NOT NULL,
    instrument text,
    telescope text,
    frame_type text,
    object text,
    observer text,
    program text,
    date_obs timestamp without time zone,
    exptime double precision,
    airmass double precision,
    ra double precision,
    dec double precision,
    filter1 text,
    filter2 text,
    science_filter text,
    slit text,
    grism text,
    grating text,
    grating_tilt double precision,
    beam_splitter text,
    ingest_flags text,
    file_size bigint,
    file_mtime timestamp without time zone,
    checksum text,
    header text,
    release_date timestamp without time zone,
    owner_ids integer[] DEFAULT '{}' NOT NULL,
    ingested_at timestamp without time zone DEFAULT (now() AT TIME ZONE 'UTC') NOT NULL,
    PRIMARY KEY (file_id),
    CONSTRAINT lick_files_obscore FOREIGN KEY (obs_publisher_did) REFERENCES ivoa.obscore (obs_publisher_did) ON DELETE CASCADE DEFERRABLE
)""")
    op.execute("CREATE UNIQUE INDEX files_did_idx ON lick.files USING btree (obs_publisher_did)")
    op.execute("CREATE UNIQUE INDEX files_path_idx ON lick.files USING btree (path)")
    op.execute("CREATE INDEX files_filename_idx ON lick.files USING btree (filename)")
    op.execute("CREATE INDEX files_night_idx ON lick.files USING btree (night)")
    op.execute("CREATE INDEX files_instrument_idx ON lick.files USING btree (instrument)")
    op.execute("CREATE INDEX files_frame_type_idx ON lick.files USING btree (frame_type)")
    op.execute("CREATE INDEX files_object_idx ON lick.files USING btree (object)")
    op.execute("CREATE INDEX files_observer_idx ON lick.files USING btree (observer)")
    op.execute("CREATE INDEX files_program_idx ON lick.files USING btree (program)")
    op.execute("CREATE INDEX files_date_obs_idx ON lick.files USING btree (date_obs)")
    op.execute("CREATE INDEX files_release_date_idx ON lick.files USING btree (release_date)")
    op.execute("""CREATE TABLE tap_schema.schemas (
    schema_name text NOT NULL,
    utype text,
    description text,
    schema_index integer,
    PRIMARY KEY (schema_name)
)""")
    op.execute("""CREATE TABLE tap_schema.tables (
    schema_name text NOT NULL,
    table_name text NOT NULL,
    table_type text NOT NULL,
    utype text,
    description text,
    table_index integer,
    PRIMARY KEY (table_name)
)""")
    op.execute("""CREATE TABLE tap_schema.columns (
    table_name text NOT NULL,
    column_name text NOT NULL,
    utype text,
    ucd text,
    unit text,
    description text,
    datatype text NOT NULL,
    arraysize text,
    xtype text,
    size integer,
    principal integer NOT NULL,
    indexed integer NOT NULL,
    std integer NOT NULL,
    column_index integer,
    PRIMARY KEY (table_name, column_name)
)""")
    op.execute("""CREATE TABLE tap_schema.keys (
    key_id text NOT NULL,
    from_table text NOT NULL,
    target_table text NOT NULL,
    utype text,
    description text,
    PRIMARY KEY (key_id)
)""")
    op.execute("""CREATE TABLE tap_schema.key_columns (
    key_id text NOT NULL,
    from_column text NOT NULL,
    target_column text NOT NULL
)""")


def downgrade() -> None:
    op.execute("DROP SCHEMA tap_schema CASCADE")
    op.execute("DROP SCHEMA lick CASCADE")
    op.execute("DROP SCHEMA ivoa CASCADE")

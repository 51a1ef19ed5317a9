"""The one declaration of the tables this archive publishes.

ObsCore 1.1 (`ivoa.obscore`, types/units/UCDs/utypes from the standard's appendix C),
the Lick archive table (`lick.files`) and TAP_SCHEMA 1.1 itself.  Columns marked
``published=False`` are storage only (access control): they never reach TAP_SCHEMA,
so ADQL can neither name nor ``*``-expand them.
"""

from __future__ import annotations

from tap_schema.model import Check, Column, ForeignKey, Index, Schema, Table

OBSCORE_UTYPE_PREFIX = "obscore:"

# s_region is indexed through the circle around (s_ra, s_dec) of diameter s_fov, which
# holds it (ingest computes s_fov so; the CHECK below enforces it).  pgSphere's GiST
# key of a polygon costs ~200 us per row inserted (its key function tests the poles
# against the polygon once per vertex; measured on pgSphere 1.2), more than all other
# ingest work in PostgreSQL together; a circle's costs a few us.  The circle is a
# stored generated column rather than an index expression so that the index condition
# is one LEAKPROOF operator on a column, usable under row-level security
# (auth.policy).  The margin (radians, ~2 mas) covers vertices written with 1e-9
# degree precision.
S_REGION_BOUND = ("CASE WHEN s_region IS NOT NULL THEN scircle(spoint(radians(s_ra), "
                  "radians(s_dec)), radians(s_fov) / 2 + 1e-8) END")

# [t_min, t_max] as a flat box, GiST-indexed, for interval overlap (SIA TIME): a btree
# on t_min or t_max alone serves only one side of "t_min <= hi AND t_max >= lo", so a
# recent night scanned every later row and an old one nearly the whole table (SIA TIME
# of one night on 1M rows: 97 ms; with the box, 8 ms).  point(), box() and box && box
# are made LEAKPROOF by the superuser set-up (auth.policy) so the index serves under
# row-level security.  "{t}" is the table alias prefix ("t0." or "").
T_INTERVAL = "box(point({t}t_min, 0), point({t}t_max, 0))"


def _oc(
    name: str,
    datatype: str,
    utype: str,
    ucd: str,
    description: str,
    unit: str | None = None,
    *,
    arraysize: str | None = None,
    xtype: str | None = None,
    nullable: bool = True,
    indexed: bool = False,
    principal: bool = True,
    bound: str | None = None,
) -> Column:
    return Column(
        name=name,
        datatype=datatype,
        description=description,
        unit=unit,
        ucd=ucd,
        utype=OBSCORE_UTYPE_PREFIX + utype,
        arraysize=arraysize,
        xtype=xtype,
        principal=principal,
        indexed=indexed,
        std=True,
        nullable=nullable,
        bound=bound,
    )


OBSCORE = Table(
    schema="ivoa",
    name="obscore",
    utype="ivo://ivoa.net/std/ObsCore#core-1.1",
    description=(
        "ObsCore 1.1 view of every dataset in the Lick Observatory archive: one row per "
        "raw frame from the Kast spectrograph, ShARCS and the Nickel cameras."
    ),
    columns=(
        _oc("dataproduct_type", "char", "ObsDataset.dataProductType", "meta.code.class",
            "Data product type: image for cameras, spectrum for spectrographs "
            "(raw 2-D spectra included).",
            arraysize="*", indexed=True),
        _oc("calib_level", "int", "ObsDataset.calibLevel", "meta.code;obs.calib",
            "Calibration level: 1 for raw instrument frames.", nullable=False),
        _oc("obs_collection", "char", "DataID.collection", "meta.id",
            "Name of the data collection (the instrument's raw-frame collection).",
            arraysize="*", nullable=False),
        _oc("obs_id", "char", "DataID.observationID", "meta.id",
            "Observation identifier: night/instrument/file name.", arraysize="*",
            nullable=False, indexed=True),
        _oc("obs_publisher_did", "char", "Curation.publisherDID", "meta.ref.ivoid",
            "IVOA dataset identifier, stable across re-ingest.", arraysize="*",
            nullable=False, indexed=True),
        _oc("access_url", "char", "Access.reference", "meta.ref.url",
            "URL of the dataset (a DataLink document or the file itself).", arraysize="*"),
        _oc("access_format", "char", "Access.format", "meta.code.mime",
            "MIME type of what access_url returns.", arraysize="*"),
        _oc("access_estsize", "long", "Access.size", "phys.size;meta.file",
            "Estimated size of the dataset.", "kbyte"),
        _oc("target_name", "char", "Target.name", "meta.id;src",
            "Object name as given by the observer (OBJECT card).", arraysize="*", indexed=True),
        _oc("s_ra", "double", "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1",
            "pos.eq.ra", "Right ascension (ICRS) of the pointing or field centre.", "deg",
            indexed=True),
        _oc("s_dec", "double", "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2",
            "pos.eq.dec", "Declination (ICRS) of the pointing or field centre.", "deg",
            indexed=True),
        _oc("s_fov", "double", "Char.SpatialAxis.Coverage.Bounds.Extent.diameter",
            "phys.angSize;instr.fov", "Diameter of a circle containing the covered region.",
            "deg"),
        # ObsCore 1.1 sect. 4 types s_region adql:REGION: published as an STC-S string
        # (char, xtype adql:REGION), stored as a pgSphere spoly.
        _oc("s_region", "char", "Char.SpatialAxis.Coverage.Support.Area",
            "pos.outline;obs.field",
            "Sky region covered (STC-S, ICRS, degrees): the WCS footprint for imagers, "
            "the slit or a pointing circle approximated by a polygon for spectrographs.",
            arraysize="*", xtype="adql:REGION", indexed=True, bound="s_region_bound"),
        _oc("s_resolution", "double", "Char.SpatialAxis.Resolution.Refval.value",
            "pos.angResolution", "Typical spatial resolution (seeing-limited FWHM).", "arcsec"),
        _oc("s_xel1", "long", "Char.SpatialAxis.numBins1", "meta.number",
            "Number of pixels along the first spatial axis."),
        _oc("s_xel2", "long", "Char.SpatialAxis.numBins2", "meta.number",
            "Number of pixels along the second spatial axis."),
        _oc("t_min", "double", "Char.TimeAxis.Coverage.Bounds.Limits.StartTime",
            "time.start;obs.exposure", "Start of the exposure (MJD, UTC).", "d", indexed=True),
        _oc("t_max", "double", "Char.TimeAxis.Coverage.Bounds.Limits.StopTime",
            "time.end;obs.exposure", "End of the exposure (MJD, UTC).", "d", indexed=True),
        _oc("t_exptime", "double", "Char.TimeAxis.Coverage.Support.Extent",
            "time.duration;obs.exposure", "Total exposure time.", "s"),
        _oc("t_resolution", "double", "Char.TimeAxis.Resolution.Refval.value",
            "time.resolution", "Temporal resolution (the exposure time for single frames).",
            "s"),
        _oc("t_xel", "long", "Char.TimeAxis.numBins", "meta.number",
            "Number of elements along the time axis (1 for single frames)."),
        _oc("em_min", "double", "Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit",
            "em.wl;stat.min", "Shortest wavelength covered.", "m"),
        _oc("em_max", "double", "Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit",
            "em.wl;stat.max", "Longest wavelength covered.", "m"),
        _oc("em_res_power", "double", "Char.SpectralAxis.Resolution.ResolPower.refVal",
            "spect.resolution", "Typical resolving power lambda/delta-lambda."),
        _oc("em_xel", "long", "Char.SpectralAxis.numBins", "meta.number",
            "Number of elements along the spectral axis."),
        _oc("o_ucd", "char", "Char.ObservableAxis.ucd", "meta.ucd",
            "UCD of the observable (phot.count for raw frames).", arraysize="*"),
        _oc("pol_states", "char", "Char.PolarizationAxis.stateList", "meta.code;phys.polarization",
            "Polarization states present (NULL: not polarimetric).", arraysize="*"),
        _oc("pol_xel", "long", "Char.PolarizationAxis.numBins", "meta.number",
            "Number of polarization states."),
        _oc("facility_name", "char", "Provenance.ObsConfig.Facility.name", "meta.id;instr.tel",
            "Telescope: Shane 3-m or Nickel 1-m at Lick Observatory.", arraysize="*",
            indexed=True),
        _oc("instrument_name", "char", "Provenance.ObsConfig.Instrument.name", "meta.id;instr",
            "Instrument (Kast blue/red, ShARCS, Nickel direct or spectrograph).", arraysize="*",
            indexed=True),
        Column(
            name="obs_release_date", datatype="char", arraysize="*", xtype="timestamp",
            description="Date the dataset becomes public; NULL when it could not be "
            "determined (then only archive staff see it).",
            ucd="time.release", utype="obscore:Curation.releaseDate", std=True, indexed=True,
            principal=True,
        ),
        Column(
            name="data_rights", datatype="char", arraysize="*",
            description="public, or proprietary until obs_release_date.",
            ucd="meta.code", utype="obscore:Curation.rights", std=True, principal=True,
        ),
        Column(
            name="owner_ids", datatype="int", arraysize="*", published=False,
            pg_type="integer[]", nullable=False, default="'{}'",
            description="Observer ids entitled to the dataset before its release.",
        ),
        Column(
            name="s_region_bound", datatype="double", xtype="circle", published=False,
            pg_type=f"scircle GENERATED ALWAYS AS ({S_REGION_BOUND}) STORED",
            description="A circle holding s_region: its index serves s_region queries.",
        ),
    ),
    primary_key=("obs_publisher_did",),
    indexes=(
        Index("obscore_s_region_bound_idx", "s_region_bound", method="gist"),
        Index("obscore_s_point_idx", "spoint(radians(s_ra), radians(s_dec))", method="gist"),
        Index("obscore_t_interval_idx", T_INTERVAL.format(t=""), method="gist"),
        Index("obscore_t_min_idx", "t_min"),
        Index("obscore_t_max_idx", "t_max"),
        Index("obscore_instrument_name_idx", "instrument_name"),
        Index("obscore_facility_name_idx", "facility_name"),
        Index("obscore_target_name_idx", "target_name"),
        Index("obscore_obs_id_idx", "obs_id"),
        Index("obscore_release_date_idx", "obs_release_date"),
        Index("obscore_dataproduct_type_idx", "dataproduct_type"),
    ),
    checks=(Check("obscore_s_region_bounded",
                  "s_region IS NULL OR (s_region @ s_region_bound) IS TRUE"),),
)


def _lick(
    name: str,
    datatype: str,
    ucd: str | None,
    description: str,
    unit: str | None = None,
    *,
    arraysize: str | None = None,
    xtype: str | None = None,
    principal: bool = False,
    indexed: bool = False,
    nullable: bool = True,
    pg_type: str | None = None,
    published: bool = True,
    default: str | None = None,
) -> Column:
    return Column(
        name=name, datatype=datatype, description=description, unit=unit, ucd=ucd,
        arraysize=arraysize, xtype=xtype, principal=principal, indexed=indexed,
        nullable=nullable, pg_type=pg_type, published=published, default=default,
    )


FILES = Table(
    schema="lick",
    name="files",
    description=(
        "Every file of the Lick archive with the instrument metadata read from its "
        "header: frame type, observer, program, airmass, filters, slit, grism/grating, "
        "ingest flags and the full primary header."
    ),
    columns=(
        _lick("file_id", "long", None, "Internal row id.", nullable=False,
              pg_type="bigint GENERATED ALWAYS AS IDENTITY", published=False),
        _lick("obs_publisher_did", "char", "meta.ref.ivoid",
              "Dataset identifier; joins ivoa.obscore.obs_publisher_did.",
              arraysize="*", principal=True, indexed=True, nullable=False),
        _lick("path", "char", "meta.id;meta.file",
              "Path below the archive root: YYYY-MM/DD/<instrument dir>/<file>.",
              arraysize="*", principal=True, indexed=True, nullable=False),
        _lick("filename", "char", "meta.id;meta.file", "File name.", arraysize="*",
              principal=True, indexed=True, nullable=False),
        _lick("night", "char", "time.epoch",
              "Observing night (local noon to noon, Pacific Standard Time), as its start date.",
              arraysize="*", xtype="timestamp", pg_type="date", principal=True, indexed=True,
              nullable=False),
        _lick("instrument_dir", "char", "meta.id;instr",
              "Instrument directory on disk: shane, AO or nickel.", arraysize="*", indexed=True,
              nullable=False),
        _lick("instrument", "char", "meta.id;instr",
              "Instrument: Kast Blue, Kast Red, ShARCS, Nickel Direct, Nickel Spectrograph.",
              arraysize="*", principal=True, indexed=True),
        _lick("telescope", "char", "meta.id;instr.tel", "Telescope: Shane or Nickel.",
              arraysize="*", indexed=True),
        _lick("frame_type", "char", "meta.code;obs",
              "Frame type: science, bias, dark, flat, arc, focus or unknown.", arraysize="*",
              principal=True, indexed=True),
        _lick("object", "char", "meta.id;src", "OBJECT card as written by the observer.",
              arraysize="*", principal=True, indexed=True),
        _lick("observer", "char", "obs.observer", "OBSERVER card.", arraysize="*",
              principal=True, indexed=True),
        _lick("program", "char", "meta.id;obs.proposal", "PROGRAM card.", arraysize="*",
              indexed=True),
        _lick("date_obs", "char", "time.start;obs.exposure", "Start of the exposure (UTC).",
              arraysize="*", xtype="timestamp", principal=True, indexed=True),
        _lick("exptime", "double", "time.duration;obs.exposure", "Exposure time.", "s",
              principal=True),
        _lick("airmass", "double", "obs.airMass", "Airmass at the start of the exposure."),
        _lick("ra", "double", "pos.eq.ra;meta.main", "Pointing right ascension (ICRS).", "deg",
              principal=True),
        _lick("dec", "double", "pos.eq.dec;meta.main", "Pointing declination (ICRS).", "deg",
              principal=True),
        _lick("filter1", "char", "instr.filter", "First filter (ShARCS FILT1NAM, Nickel FILTNAM).",
              arraysize="*"),
        _lick("filter2", "char", "instr.filter", "Second filter (ShARCS FILT2NAM).", arraysize="*"),
        _lick("science_filter", "char", "instr.filter", "Science filter (ShARCS SCIFILT).",
              arraysize="*"),
        _lick("slit", "char", "instr.setup", "Kast slit.", arraysize="*"),
        _lick("grism", "char", "instr.setup", "Kast blue grism.", arraysize="*"),
        _lick("grating", "char", "instr.setup", "Kast red grating.", arraysize="*"),
        _lick("grating_tilt", "double", "instr.setup", "Kast red grating tilt (encoder units)."),
        _lick("beam_splitter", "char", "instr.setup", "Kast beam splitter (dichroic).",
              arraysize="*"),
        _lick("ingest_flags", "char", "meta.code.qual",
              "Space-separated repairs made while reading the file (e.g. missing_end, "
              "nul_bytes, date_from_path, bad_coordinates); empty for clean files.",
              arraysize="*"),
        _lick("file_size", "long", "phys.size;meta.file", "File size.", "byte"),
        _lick("file_mtime", "char", "time.processing", "File modification time (UTC).",
              arraysize="*", xtype="timestamp"),
        _lick("checksum", "char", "meta.code", "SHA-256 of the file content.", arraysize="*"),
        _lick("header", "char", "meta.fits",
              "The full primary FITS header, one 80-character card per line.", arraysize="*"),
        _lick("release_date", "char", "time.release",
              "Date the file becomes public (NULL: undetermined, staff only).",
              arraysize="*", xtype="timestamp", indexed=True),
        _lick("owner_ids", "int", None, "Observer ids entitled before release.",
              arraysize="*", pg_type="integer[]", nullable=False, published=False,
              default="'{}'"),
        _lick("ingested_at", "char", None, "When the row was last written.", arraysize="*",
              xtype="timestamp", nullable=False, published=False,
              default="(now() AT TIME ZONE 'UTC')"),
    ),
    primary_key=("file_id",),
    indexes=(
        Index("files_did_idx", "obs_publisher_did", unique=True),
        Index("files_path_idx", "path", unique=True),
        Index("files_filename_idx", "filename"),
        Index("files_night_idx", "night"),
        Index("files_instrument_idx", "instrument"),
        Index("files_frame_type_idx", "frame_type"),
        Index("files_object_idx", "object"),
        Index("files_observer_idx", "observer"),
        Index("files_program_idx", "program"),
        Index("files_date_obs_idx", "date_obs"),
        Index("files_release_date_idx", "release_date"),
    ),
    foreign_keys=(
        ForeignKey(
            key_id="lick_files_obscore",
            target_table="ivoa.obscore",
            columns=(("obs_publisher_did", "obs_publisher_did"),),
            description="Each archive file is one ObsCore dataset.",
        ),
    ),
)


def _ts(name: str, datatype: str, description: str, *, principal: bool = True,
        nullable: bool = True, delimited: bool = False) -> Column:
    arraysize = "*" if datatype == "char" else None
    return Column(name=name, datatype=datatype, description=description, arraysize=arraysize,
                  principal=principal, std=True, nullable=nullable, delimited=delimited)


# TAP 1.1 sect. 4: the TAP_SCHEMA tables and their columns, described by themselves.
TAP_SCHEMA_TABLES = (
    Table(
        schema="tap_schema", name="schemas", description="Schemas published by this service.",
        columns=(
            _ts("schema_name", "char", "Schema name for reference to tap_schema.schemas",
                nullable=False),
            _ts("utype", "char", "lists the utypes of schemas in the tableset"),
            _ts("description", "char", "describes schemas in the tableset"),
            _ts("schema_index", "int", "recommended sort order when listing schemas"),
        ),
        primary_key=("schema_name",),
    ),
    Table(
        schema="tap_schema", name="tables", description="Tables published by this service.",
        columns=(
            _ts("schema_name", "char", "the schema this table belongs to", nullable=False),
            _ts("table_name", "char", "the fully qualified table name", nullable=False),
            _ts("table_type", "char", "one of: table view", nullable=False),
            _ts("utype", "char", "lists the utype of tables in the tableset"),
            _ts("description", "char", "describes tables in the tableset"),
            _ts("table_index", "int", "recommended sort order when listing tables"),
        ),
        primary_key=("table_name",),
        foreign_keys=(
            ForeignKey("tap_schema_tables_schema", "tap_schema.schemas",
                       (("schema_name", "schema_name"),), "The schema of each table."),
        ),
    ),
    Table(
        schema="tap_schema", name="columns", description="Columns of the published tables.",
        columns=(
            _ts("table_name", "char", "the table this column belongs to", nullable=False),
            _ts("column_name", "char", "the column name", nullable=False),
            _ts("utype", "char", "lists the utypes of columns in the tableset"),
            _ts("ucd", "char", "lists the UCDs of columns in the tableset"),
            _ts("unit", "char", "lists the unit used for column values in the tableset"),
            _ts("description", "char", "describes the columns in the tableset"),
            _ts("datatype", "char", "lists the ADQL datatype of columns in the tableset",
                nullable=False),
            _ts("arraysize", "char", "lists the size of variable-length columns in the tableset"),
            _ts("xtype", "char", "a DALI or custom extended type annotation"),
            _ts("size", "int", "deprecated: use arraysize", delimited=True),
            _ts("principal", "int", "a principal column; 1 means 1, 0 means 0", nullable=False),
            _ts("indexed", "int", "an indexed column; 1 means 1, 0 means 0", nullable=False),
            _ts("std", "int", "a standard column; 1 means 1, 0 means 0", nullable=False),
            _ts("column_index", "int", "recommended sort order when listing columns"),
        ),
        primary_key=("table_name", "column_name"),
        foreign_keys=(
            ForeignKey("tap_schema_columns_table", "tap_schema.tables",
                       (("table_name", "table_name"),), "The table of each column."),
        ),
    ),
    Table(
        schema="tap_schema", name="keys", description="Foreign keys between published tables.",
        columns=(
            _ts("key_id", "char", "unique key to join to tap_schema.key_columns", nullable=False),
            _ts("from_table", "char", "the table with the foreign key", nullable=False),
            _ts("target_table", "char", "the table with the primary key", nullable=False),
            _ts("utype", "char", "lists the utype of keys in the tableset"),
            _ts("description", "char", "describes keys in the tableset"),
        ),
        primary_key=("key_id",),
        foreign_keys=(
            ForeignKey("tap_schema_keys_from", "tap_schema.tables",
                       (("from_table", "table_name"),), "The table holding the foreign key."),
            ForeignKey("tap_schema_keys_target", "tap_schema.tables",
                       (("target_table", "table_name"),), "The table the key points to."),
        ),
    ),
    Table(
        schema="tap_schema", name="key_columns", description="Columns of the foreign keys.",
        columns=(
            _ts("key_id", "char", "key to join to tap_schema.keys", nullable=False),
            _ts("from_column", "char", "column in the from_table", nullable=False),
            _ts("target_column", "char", "column in the target_table", nullable=False),
        ),
        foreign_keys=(
            ForeignKey("tap_schema_key_columns_key", "tap_schema.keys",
                       (("key_id", "key_id"),), "The key each column pair belongs to."),
        ),
    ),
)

SCHEMAS: tuple[Schema, ...] = (
    Schema(
        name="ivoa",
        description="IVOA-defined tables: the ObsCore 1.1 observation table.",
        tables=(OBSCORE,),
    ),
    Schema(
        name="lick",
        description="Lick Observatory archive tables with the instruments' own metadata.",
        tables=(FILES,),
    ),
    Schema(
        name="tap_schema",
        description="TAP 1.1 metadata: the published schemas, tables, columns and keys.",
        tables=TAP_SCHEMA_TABLES,
    ),
)


def published_tables() -> tuple[Table, ...]:
    return tuple(t for s in SCHEMAS for t in s.tables if t.published)


def table(qualified_name: str) -> Table:
    """Look up a published table by ``schema.name`` (case-insensitive)."""
    wanted = qualified_name.lower()
    for t in published_tables():
        if t.qualified_name == wanted:
            return t
    raise KeyError(qualified_name)

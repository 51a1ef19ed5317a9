"""SIA 2.0 queries: validated parameters → one SQL statement → the TAP executor.

Why SQL and not generated ADQL: every SIA constraint is a test of one ObsCore column
against values, and one of them cannot be said in ADQL at all — ``POS=RANGE`` is a
longitude/latitude box bounded by meridians and *parallels*, while ADQL's BOX has
great-circle sides (and is compiled to a polygon); pgSphere's ``sbox`` is exactly
SIA's range.  So the statement is composed here from column names of the one
declaration (:mod:`tap_schema.declaration`, never from request text) with every
value bound as a parameter — nothing to quote, nothing to re-parse.  Everything
after the statement is TAP's (:meth:`TapService.start_statement`): the transaction
bound to the requester (row-level security), the statement limits, the cursor or
COPY, the streaming writers and the MAXREC+1 honest OVERFLOW.  The output columns and
their FIELD metadata are those of ADQL's ``SELECT * FROM ivoa.obscore``, taken from
the translator itself, so SIA and TAP describe ObsCore identically.

SIA semantics (SIA 2.0, the {query} resource): values of one parameter OR, parameters AND, NULL
never matches (a row with unknown t_min/t_max matches no TIME).  Spatial tests go
through the indexed bounding circle of s_region first (``Column.bound``; its
operator is LEAKPROOF, so the index serves under row-level security), then the
exact pgSphere test.  SIA serves images: rows whose dataproduct_type is image or
cube (SIA 2.0, DPTYPE); the spectrographs' frames are found through TAP.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence

import psycopg2.extensions

from auth.principals import Principal
from tap_schema.declaration import OBSCORE, T_INTERVAL
from vo_service.adql import Metadata, Translation, translate
from vo_service.adql.geometry import check_polygon, scircle_text, spoint_text, spoly_text
from vo_service.errors import UsageFault
from vo_service.params import Params
from vo_service.result import ResultColumn
from vo_service.serialize.results import ResultInfo, stream_result
from vo_service.services import sia_documents as documents
from vo_service.services.sia_params import (
    BY_NAME,
    POL_STATES,
    Circle,
    Interval,
    Polygon,
    Range,
    Shape,
    SiaRequest,
    id_candidates,
    parse_sia_request,
)
from vo_service.services.tap import CancelHandle, Execution, TapService

#: The data products SIA serves (SIA 2.0, DPTYPE: "image" and "cube").
PRODUCT_TYPES = ("image", "cube")
#: Parameters whose current values the MAXREC=0 descriptor lists (read as the
#: requester: only values of rows they may see).
LISTED = ("COLLECTION", "FACILITY", "INSTRUMENT", "DPTYPE", "CALIB", "FORMAT")
_TABLE = f"{OBSCORE.schema}.{OBSCORE.name}"


@functools.cache
def obscore_columns() -> tuple[ResultColumn, ...]:
    """The FIELDs of ADQL's ``SELECT * FROM ivoa.obscore`` (what TAP writes)."""
    return translate(f"SELECT * FROM {_TABLE}", Metadata.from_declaration()).columns


@functools.cache
def _bounds() -> dict[str, str]:
    """Column → its indexed bounding circle (s_region → s_region_bound)."""
    return {c.name: c.bound for c in OBSCORE.columns if c.bound}


class _Statement:
    """Collects the WHERE terms and their bound values (``%(pN)s``)."""

    def __init__(self) -> None:
        self.params: dict[str, object] = {}

    def bind(self, value: object) -> str:
        name = f"p{len(self.params) + 1}"
        self.params[name] = value
        return f"%({name})s"


_DECLARED = frozenset(c.name for c in OBSCORE.columns)


def _column(name: str) -> str:
    # Declared names only (the table in tap_schema.declaration), never request text.
    if name not in _DECLARED:
        raise AssertionError(f"{name} is not an ivoa.obscore column")
    return f"t0.{name}"


def compile_query(request: SiaRequest) -> Translation:
    """The SQL of an SIA query, capped at MAXREC+1 rows (blocking for big polygons:
    run in the query's worker thread).

    Raises UsageFault for a polygon pgSphere could not take.
    """
    statement = _Statement()
    terms = [f"{_column('dataproduct_type')} = ANY({statement.bind(list(PRODUCT_TYPES))})"]
    for name, values in request.constraints.items():
        parameter = BY_NAME[name]
        alternatives = _alternatives(statement, parameter.kind, parameter.columns, values)
        terms.append(alternatives[0] if len(alternatives) == 1
                     else "(" + " OR ".join(alternatives) + ")")
    columns = obscore_columns()
    select = ", ".join(f"{_column(c.name)} AS c{i}" for i, c in enumerate(columns, 1))
    sql = (f"SELECT {select} FROM {_TABLE} AS t0 WHERE {' AND '.join(terms)} "
           f"LIMIT {statement.bind(request.maxrec + 1)}")
    return Translation(sql, statement.params, columns)


def _alternatives(statement: _Statement, kind: str, columns: Sequence[str],
                  values: Sequence[object]) -> list[str]:
    """The terms of one parameter's values (ORed by the caller)."""
    if kind in ("text", "int", "id"):
        wanted: list[object] = list(values)
        if kind == "id":
            wanted = list(dict.fromkeys(c for v in values for c in id_candidates(str(v))))
        # = ANY(array): one term, one bound value, served by the column's index.
        return [f"{_column(columns[0])} = ANY({statement.bind(wanted)})"]
    if kind == "pol":
        # pol_states is '/I/Q/U/': a state is present when '/<state>/' occurs in it.
        assert all(v in POL_STATES for v in values)
        return [f"strpos({_column(columns[0])}, {statement.bind(f'/{v}/')}) > 0"
                for v in values]
    if kind == "within":
        # BETWEEN with ±Infinity bounds: NULL and NaN never match, open ends hold all.
        column = _column(columns[0])
        return [f"{column} BETWEEN {statement.bind(v.low)} AND {statement.bind(v.high)}"
                for v in values if isinstance(v, Interval)]
    if kind == "overlap":
        low, high = _column(columns[0]), _column(columns[1])
        indexed = tuple(columns) == ("t_min", "t_max")  # T_INTERVAL's GiST index
        terms = []
        for v in values:
            if not isinstance(v, Interval):
                continue
            lo, hi = statement.bind(v.low), statement.bind(v.high)
            exact = f"{low} <= {hi} AND {high} >= {lo}"
            if indexed:
                # The box finds the rows; the exact test is kept out of the btrees on
                # t_min/t_max (IS TRUE: same rows, not an index condition), else with
                # LIMIT the planner walked t_min from 1990 hoping to meet an old night
                # soon (10M rows: 656 ms; box alone: 8 ms).
                exact = (f"{T_INTERVAL.format(t='t0.')} && box(point({lo}, 0), "
                         f"point({hi}, 0)) AND ({low} <= {hi}) IS TRUE AND "
                         f"({high} >= {lo}) IS TRUE")
            terms.append(f"({exact})")
        return terms
    if kind == "pos":
        return [_intersects(statement, columns[0], v) for v in values
                if isinstance(v, Circle | Range | Polygon)]
    raise AssertionError(kind)


def _intersects(statement: _Statement, column: str, shape: Shape) -> str:
    """``column`` intersects ``shape``: first its bounding circle against a circle
    holding the shape (the GiST index), then pgSphere's exact test."""
    holder: str | None
    if isinstance(shape, Circle):
        text = scircle_text(shape.lon, shape.lat, shape.radius)
        exact = holder = f"CAST({statement.bind(text)} AS scircle)"
    elif isinstance(shape, Polygon):
        problem = check_polygon(shape.vertices)
        if problem is not None:
            raise UsageFault(f"POS=POLYGON: {problem}")
        exact = holder = f"CAST({statement.bind(spoly_text(shape.vertices))} AS spoly)"
    else:
        exact = f"CAST({statement.bind(_sbox_text(shape))} AS sbox)"
        circle = range_circle(shape)
        holder = None if circle is None else (
            f"CAST({statement.bind(scircle_text(*circle))} AS scircle)")
    test = f"{_column(column)} && {exact}"
    bound = _bounds().get(column)
    if bound is None or holder is None:
        return f"({test})"
    return f"(t0.{bound} && {holder} AND {test})"


def _sbox_text(shape: Range) -> str:
    """pgSphere's box: lower-left and upper-right corners, longitudes counted east."""
    return (f"({spoint_text(shape.lon_min, shape.lat_min)},"
            f"{spoint_text(shape.lon_max, shape.lat_max)})")


def range_circle(shape: Range) -> tuple[float, float, float] | None:
    """(lon, lat, radius) of a circle holding the range, or None when no circle of at
    most 90 degrees does (then only the exact test remains, without the index).

    Around a pole the range is a cap (or part of one).  Otherwise the circle is
    centred on the range's middle: along each parallel inside the range the distance
    from there grows with the longitude difference, and along each meridian it has
    at most one minimum, so the farthest points of the range are its corners.
    """
    margin = 1e-7
    if shape.lat_max >= 90:
        radius = 90 - shape.lat_min
        return (0.0, 90.0, radius + margin) if radius + margin <= 90 else None
    if shape.lat_min <= -90:
        radius = 90 + shape.lat_max
        return (0.0, -90.0, radius + margin) if radius + margin <= 90 else None
    lon = (shape.lon_min + shape.lon_max) / 2
    lat = (shape.lat_min + shape.lat_max) / 2
    radius = max(_separation(lon, lat, a, b)
                 for a in (shape.lon_min, shape.lon_max)
                 for b in (shape.lat_min, shape.lat_max))
    return (lon, lat, radius + margin) if radius + margin <= 90 else None


def _separation(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Degrees between two points (atan2 form: exact at every distance)."""
    a1, b1, a2, b2 = map(math.radians, (lon1, lat1, lon2, lat2))
    dlon = a2 - a1
    num = math.hypot(math.cos(b2) * math.sin(dlon),
                     math.cos(b1) * math.sin(b2) - math.sin(b1) * math.cos(b2) * math.cos(dlon))
    den = math.sin(b1) * math.sin(b2) + math.cos(b1) * math.cos(b2) * math.cos(dlon)
    return math.degrees(math.atan2(num, den))


class SiaService:
    """SIA queries on the sync TAP service's pool, limits and executor.

    Blocking methods (:meth:`start`, :meth:`describe`) run in a worker thread of
    the query pool, under an admission slot the HTTP layer holds.
    """

    def __init__(self, tap: TapService, base_url: str) -> None:
        self.tap = tap
        self.base_url = base_url.rstrip("/")
        self.query_url = f"{self.base_url}/sia/query"
        self._values = _ValuesCache()

    def parse(self, params: Params) -> SiaRequest:
        return parse_sia_request(params, self.tap.tap)

    def start(self, principal: Principal, request: SiaRequest,
              handle: CancelHandle | None = None) -> Execution:
        return self.tap.start_statement(principal, compile_query(request), request.format,
                                        request.maxrec, handle)

    def write(self, execution: Execution, request: SiaRequest) -> Iterator[bytes]:
        """The result document: TAP's writers, with the service descriptors."""
        return execution.stream(request.format, request.maxrec,
                                self._info(request, None))

    def describe(self, principal: Principal, request: SiaRequest) -> bytes:
        """MAXREC=0: no rows, the columns, and the self-description with the values of
        COLLECTION, FACILITY... that ``principal`` may see (SIA 2.0: MAXREC, and the
        service parameter self-description).

        Whether the query has rows is not asked (SIA: metadata only, no OVERFLOW);
        its parameters are still checked, so that a bad one is reported.
        """
        compile_query(request)
        options = self._values.get(principal.user_id)
        if options is None:
            options = self.tap.read_as(principal, _current_values)
            self._values.put(principal.user_id, options)
        return b"".join(stream_result(request.format, obscore_columns(), iter(()), maxrec=0,
                                      info=self._info(request, options)))

    def _info(self, request: SiaRequest, options: dict[str, list[str]] | None
              ) -> ResultInfo:
        if not request.format.is_votable:
            return ResultInfo()
        return ResultInfo(resources=documents.descriptors(
            self.query_url, f"{self.base_url}/datalink/links", obscore_columns(), options))


#: Seconds the values of one requester are reused: reading them scans every row
#: (about 0.5 s for a million), and they change only with ingest and releases.
VALUES_TTL_S = 60.0
#: Requesters whose values are kept at most (the oldest entry goes first).
VALUES_ENTRIES = 256


class _ValuesCache:
    """The MAXREC=0 values per requester, reused for :data:`VALUES_TTL_S` seconds.

    Keyed by user id (None: anonymous): row-level security decides visibility from
    the verified user id alone, so one user's values are never shown to another.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[int | None, tuple[float, dict[str, list[str]]]] = \
            OrderedDict()

    def get(self, user_id: int | None) -> dict[str, list[str]] | None:
        with self._lock:
            entry = self._entries.get(user_id)
            if entry is None or time.monotonic() > entry[0]:
                return None
            return entry[1]

    def put(self, user_id: int | None, values: dict[str, list[str]]) -> None:
        with self._lock:
            self._entries.pop(user_id, None)
            self._entries[user_id] = (time.monotonic() + VALUES_TTL_S, values)
            while len(self._entries) > VALUES_ENTRIES:
                self._entries.popitem(last=False)


def _current_values(cursor: psycopg2.extensions.cursor) -> dict[str, list[str]]:
    """The distinct values of the listed parameters' columns among the rows SIA
    serves, as the cursor's requester sees them (row-level security): an anonymous
    request never learns a collection or instrument that only proprietary rows have."""
    listed = [(name, BY_NAME[name].columns[0]) for name in LISTED]
    columns = ", ".join(_column(column) for _, column in listed)
    cursor.execute(f"SELECT DISTINCT {columns} FROM {_TABLE} AS t0 "
                   f"WHERE {_column('dataproduct_type')} = ANY(%s)", (list(PRODUCT_TYPES),))
    found: dict[str, set[str]] = {name: set() for name, _ in listed}
    for row in cursor.fetchall():
        for (name, _), value in zip(listed, row, strict=True):
            if value is not None:
                found[name].add(str(value))
    return {name: sorted(values, key=_natural) for name, values in found.items()}


def _natural(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)

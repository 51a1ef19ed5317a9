"""The archive-scale queries of bench.tap and bench.sia, as anonymous and as an observer.

Cone, night range, instrument + filter (TAP and SIA) and an upload cross-match of
1,000 positions (TAP), each timed over HTTP against a real server as an anonymous
client and as ``bench.observer@example.edu`` (a bearer token; an owner in 45 programs
with grants on 5 more: bench/archive.py), with row-level security on as for real
data.  Parameters are drawn from the loaded rows (cones on real pointings, nights
that were observed), the same for both identities.  :func:`explain` prints
``EXPLAIN (ANALYZE, BUFFERS)`` of the SQL the service runs, in a transaction bound to
the same requester, so that index use (or its absence) is visible.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import psycopg2

from auth import tokens, users
from auth.identity import begin_query_transaction, load_secret
from auth.principals import ANONYMOUS, Principal
from bench.archive import BENCH_LOGIN, DID

CONE_RADIUS = 0.05  # degrees
XMATCH_RADIUS = 0.003  # degrees (about 11 arcsec)
MAXREC = 100
COLUMNS = "obs_publisher_did, obs_id, s_ra, s_dec, t_min, instrument_name, target_name"
# instrument and a wavelength inside one of its filters (or dispersers)
INSTRUMENT_BANDS = (("Nickel Direct", 5.45e-7), ("Nickel Direct", 6.4e-7),
                    ("ShARCS", 2.15e-6), ("Nickel Direct", 4.4e-7), ("ShARCS", 1.25e-6))


@dataclass(frozen=True)
class Identity:
    name: str
    principal: Principal
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """Pointings and nights of loaded rows (public ones and the observer's own)."""

    positions: list[tuple[float, float]]
    nights: list[float]  # MJD of the UTC date on which a night's frames start

    def cone(self, i: int) -> tuple[float, float]:
        return self.positions[i % len(self.positions)]

    def night(self, i: int) -> tuple[float, float]:
        start = self.nights[i % len(self.nights)]
        return start, start + 0.7


def identities(owner_dsn: str) -> list[Identity]:
    """Anonymous, and the bench observer with a fresh bearer token."""
    conn = psycopg2.connect(owner_dsn)
    try:
        user = users.get_user(conn, login=BENCH_LOGIN)
        assert user is not None, "the archive was not built by bench/archive.py"
        principal = users.principal_for(conn, user.user_id)
        assert principal is not None
        token, _ = tokens.create_token(conn, user.user_id, label="bench")
    finally:
        conn.close()
    return [Identity("anonymous", ANONYMOUS),
            Identity("observer, 50 programs", principal, {"Authorization": f"Bearer {token}"})]


def sample(owner_dsn: str, rows: int, count: int = 400) -> Sample:
    """Rows spread evenly over the table (by identifier: index lookups, no scan), and
    as many of the observer's proprietary rows."""
    dids = [DID.format(1 + (i * rows) // count) for i in range(count)]
    with psycopg2.connect(owner_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT s_ra, s_dec, t_min FROM ivoa.obscore WHERE obs_publisher_did = "
                    "ANY(%s) AND s_ra IS NOT NULL ORDER BY obs_publisher_did", (dids,))
        found = cur.fetchall()
        cur.execute("SELECT o.s_ra, o.s_dec, o.t_min FROM ivoa.obscore AS o JOIN auth.users "
                    "AS u ON o.owner_ids @> ARRAY[u.observer_id] WHERE u.login = %s AND "
                    "o.data_rights = 'proprietary' AND o.s_ra IS NOT NULL LIMIT %s",
                    (BENCH_LOGIN, count // 4))
        own = cur.fetchall()
    conn.close()
    mixed = [row for pair in zip(found, own + found, strict=False) for row in pair]
    rng = random.Random(3)
    rng.shuffle(mixed)
    return Sample([(round(r[0], 6), round(r[1], 6)) for r in mixed],
                  [math.floor(r[2]) for r in mixed])


def tap_queries(s: Sample) -> dict[str, Callable[[int], str]]:
    """ADQL of each query kind for request number i."""
    return {
        "cone": lambda i: (f"SELECT {COLUMNS} FROM ivoa.obscore WHERE 1 = CONTAINS(POINT("
                           f"'ICRS', s_ra, s_dec), CIRCLE('ICRS', {s.cone(i)[0]}, "
                           f"{s.cone(i)[1]}, {CONE_RADIUS}))"),
        "night range": lambda i: (f"SELECT {COLUMNS} FROM ivoa.obscore WHERE t_min BETWEEN "
                                  f"{s.night(i)[0]} AND {s.night(i)[1]}"),
        "instrument+filter": lambda i: (
            f"SELECT {COLUMNS} FROM ivoa.obscore WHERE instrument_name = "
            f"'{INSTRUMENT_BANDS[i % 5][0]}' AND em_min <= {INSTRUMENT_BANDS[i % 5][1]} "
            f"AND em_max >= {INSTRUMENT_BANDS[i % 5][1]}"),
    }


def sia_queries(s: Sample) -> dict[str, tuple[Callable[[int], dict[str, str]],
                                              Callable[[int], str]]]:
    """SIA parameters of each kind, with the equivalent ADQL (the TAP baseline)."""
    images = " AND dataproduct_type IN ('image', 'cube')"
    return {
        "cone": (lambda i: {"POS": f"CIRCLE {s.cone(i)[0]} {s.cone(i)[1]} {CONE_RADIUS}"},
                 lambda i: ("SELECT * FROM ivoa.obscore WHERE 1 = INTERSECTS(s_region, "
                            f"CIRCLE('ICRS', {s.cone(i)[0]}, {s.cone(i)[1]}, {CONE_RADIUS}))"
                            + images)),
        "night range": (lambda i: {"TIME": f"{s.night(i)[0]} {s.night(i)[1]}"},
                        lambda i: (f"SELECT * FROM ivoa.obscore WHERE t_min <= "
                                   f"{s.night(i)[1]} AND t_max >= {s.night(i)[0]}" + images)),
        "instrument+filter": (
            lambda i: {"INSTRUMENT": INSTRUMENT_BANDS[i % 5][0],
                       "BAND": f"{INSTRUMENT_BANDS[i % 5][1]} {INSTRUMENT_BANDS[i % 5][1]}"},
            lambda i: (f"SELECT * FROM ivoa.obscore WHERE instrument_name = "
                       f"'{INSTRUMENT_BANDS[i % 5][0]}' AND em_min <= "
                       f"{INSTRUMENT_BANDS[i % 5][1]} AND em_max >= "
                       f"{INSTRUMENT_BANDS[i % 5][1]}" + images)),
    }


def upload_votable(s: Sample, count: int = 1000) -> bytes:
    """``count`` positions: half on loaded pointings, half anywhere on the sky."""
    rng = random.Random(5)
    rows = []
    for i in range(count):
        if i % 2:
            ra, dec = rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-0.5, 0.99)))
        else:
            ra, dec = s.cone(i // 2)
        rows.append(f"<TR><TD>{i}</TD><TD>{ra:.6f}</TD><TD>{dec:.6f}</TD></TR>")
    return ("<?xml version='1.0'?><VOTABLE version='1.4' "
            "xmlns='http://www.ivoa.net/xml/VOTable/v1.3'><RESOURCE><TABLE name='pos'>"
            "<FIELD name='id' datatype='int'/><FIELD name='ra' datatype='double' "
            "unit='deg'/><FIELD name='dec' datatype='double' unit='deg'/><DATA><TABLEDATA>"
            + "".join(rows) + "</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>").encode()


XMATCH = ("SELECT u.id, o.obs_publisher_did, o.s_ra, o.s_dec, o.t_min, o.instrument_name "
          "FROM TAP_UPLOAD.pos AS u JOIN ivoa.obscore AS o ON 1 = CONTAINS(POINT('ICRS', "
          f"o.s_ra, o.s_dec), CIRCLE('ICRS', u.ra, u.dec, {XMATCH_RADIUS}))")


def timed(client: httpx.Client, method: str, url: str, headers: dict[str, str],
          **kwargs: object) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    reply = client.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    reply.raise_for_status()
    return elapsed, reply


def p50_ms(times: Sequence[float]) -> float:
    return statistics.median(times) * 1000


def p99_ms(times: Sequence[float]) -> float:
    ordered = sorted(times)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000


def explain(owner_dsn: str, query_dsn: str, principal: Principal, sql: str,
            params: object = None,
            setup: Callable[[psycopg2.extensions.cursor], None] | None = None) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of ``sql`` as the query role, bound to ``principal``."""
    with psycopg2.connect(owner_dsn) as owner, owner.cursor() as cur:
        secret = load_secret(cur)
    owner.close()
    conn = psycopg2.connect(query_dsn)
    try:
        with conn.cursor() as cur:
            if setup is not None:  # uploads: the temporary table, as the service makes it
                cur.execute("SET TRANSACTION READ WRITE")
                setup(cur)
            begin_query_transaction(cur, principal, secret)
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            return "\n".join(row[0] for row in cur.fetchall())
    finally:
        conn.rollback()
        conn.close()

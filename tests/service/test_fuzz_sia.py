"""Hostile values on every SIA parameter: never a 500, always a clear error document.

The catalogue of trouble, the credentials and the invariants are those of
:mod:`tests.service.test_fuzz`; here they meet /sia/query — every SIA parameter,
repeated, in any case, with hostile values, shapes with odd numbers, infinities,
huge and tiny values, self-crossing polygons — by GET, urlencoded POST and
multipart, and the VOSI resources.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.service import test_fuzz as fuzz
from tests.service.test_fuzz import FUZZ, TROUBLE, check, credentials, encode, values

# The fuzz suite's fixtures: its server (limits raised for fuzzing) and an HTTP client.
target = fuzz.target
client = fuzz.client

SIA = ["POS", "BAND", "TIME", "POL", "FOV", "SPATRES", "EXPTIME", "ID", "COLLECTION",
       "FACILITY", "INSTRUMENT", "DPTYPE", "CALIB", "TARGET", "TIMERES", "SPECRP", "FORMAT",
       "MAXREC", "RESPONSEFORMAT", "UPLOAD", "REQUEST"]

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-1000, 1000).map(str),
    st.sampled_from(["-Inf", "+Inf", "inf", "Infinity", "NaN", "1e308", "1e-320", "-0",
                     "360", "0", "90", "-90", "180", "359.9999999999", "1e999", "0x1p3",
                     "١", "1_0", "", " "]),
)


def _shape(keyword: str, count: int) -> st.SearchStrategy[str]:
    return st.lists(numbers, min_size=count, max_size=count).map(
        lambda ns: " ".join([keyword, *ns]))


shapes = st.one_of(
    st.sampled_from(["CIRCLE", "circle", "RANGE", "POLYGON", "BOX", "POINT", ""]).flatmap(
        lambda k: st.integers(0, 9).flatmap(lambda n: _shape(k, n))),
    _shape("CIRCLE", 3), _shape("RANGE", 4), _shape("POLYGON", 6), _shape("POLYGON", 8),
    st.sampled_from([
        "POLYGON 0 0 10 10 10 0 0 10", "POLYGON 0 0 120 0 240 0", "POLYGON 0 0 0 0 0 0",
        "POLYGON 0 0 180 0 90 10", "POLYGON 0 90 120 90 240 90", "POLYGON 0 0 1e-12 0 0 1e-12",
        "POLYGON " + " ".join(["1 1"] * 100), "POLYGON " + " ".join(
            f"{i * 3.6} {(-1) ** i * 80}" for i in range(100)),
        "RANGE 0 360 -90 90", "RANGE -Inf +Inf -Inf +Inf", "RANGE 360 360 90 90",
        "RANGE +Inf -Inf 0 0", "CIRCLE 0 90 90", "CIRCLE 360 -90 0", "CIRCLE 10 20 -0",
    ]),
)
intervals = st.one_of(
    numbers, st.tuples(numbers, numbers).map(" ".join),
    st.lists(numbers, min_size=3, max_size=5).map(" ".join))
sia_values = st.one_of(values, shapes, intervals, st.sampled_from(TROUBLE))


def sia_pairs() -> st.SearchStrategy[list[tuple[str, str]]]:
    name = st.sampled_from(SIA).flatmap(lambda n: st.sampled_from([n, n.lower(), n.title()]))
    return st.lists(st.tuples(name, sia_values), max_size=8)


@FUZZ
@given(pairs=sia_pairs(), method=st.sampled_from(["GET", "POST"]), auth=credentials())
def test_sia_query(client, target, pairs, method, auth) -> None:
    if method == "GET":
        reply = client.get("/sia/query?" + encode(pairs), headers=auth)
    else:
        reply = client.post("/sia/query", content=encode(pairs), headers={
            **auth, "Content-Type": "application/x-www-form-urlencoded"})
    check(reply, target)


@FUZZ
@given(pos=st.lists(shapes, min_size=1, max_size=4), other=sia_pairs())
def test_sia_shapes(client, target, pos, other) -> None:
    reply = client.get("/sia/query?" + encode([("POS", p) for p in pos] + other))
    check(reply, target)


@FUZZ
@given(pairs=sia_pairs(), upload=st.binary(max_size=200))
def test_sia_multipart(client, target, pairs, upload) -> None:
    data = {n: v for n, v in pairs if "\x00" not in n and n}
    reply = client.post("/sia/query", data=data, files={"t": ("t.xml", upload, "text/xml")})
    check(reply, target)


@FUZZ
@given(pairs=sia_pairs(),
       path=st.sampled_from(["/sia/capabilities", "/sia/availability", "/sia", "/sia/",
                             "/sia/query/x", "/sia/tables"]),
       auth=credentials())
def test_sia_vosi(client, target, pairs, path, auth) -> None:
    check(client.get(path + "?" + encode(pairs), headers=auth), target)

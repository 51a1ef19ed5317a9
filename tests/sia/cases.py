"""SIA queries over the demo archive, per parameter, built from the rows themselves.

Each parameter gets values that select some rows and not others (open and closed
intervals, exact boundary values, values no row has, repeats that OR), so that a
wrong operator, a lost NULL rule or an ignored repeat changes some answer.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from tests.sia.reference import IMAGE_TYPES, Row, _lon_lat

Query = dict[str, list[str]]


def _images(rows: Sequence[Row]) -> list[Row]:
    return sorted((r for r in rows if r.values["dataproduct_type"] in IMAGE_TYPES),
                  key=lambda r: r.did)


def _numbers(rows: Sequence[Row], column: str) -> list[float]:
    return sorted({float(r.values[column]) for r in rows if r.values[column] is not None})


def _within(rows: Sequence[Row], column: str, name: str) -> list[Query]:
    values = _numbers(_images(rows), column)
    low, mid, high = values[0], statistics.median(values), values[-1]
    q1, q3 = values[len(values) // 4], values[3 * len(values) // 4]
    return [
        {name: [f"-Inf {mid!r}"]}, {name: [f"{mid!r} +Inf"]}, {name: [f"{q1!r} {q3!r}"]},
        {name: [repr(values[len(values) // 2])]},  # one value: [v, v], exact boundary
        {name: ["-Inf +Inf"]},  # every known value, no NULL
        {name: [f"{high * 2 + 1!r} +Inf"]},  # nothing
        {name: [f"-inf {low!r}", f"{high!r} inf"]},  # repeated: both ends (pyvo spelling)
        {name: [f"{q1!r} {q1!r}", f"{q3!r} {q3!r}"]},
    ]


def _overlap(rows: Sequence[Row], low_col: str, high_col: str, name: str) -> list[Query]:
    images = [r for r in _images(rows) if r.values[low_col] is not None
              and r.values[high_col] is not None]
    a, b = images[len(images) // 3], images[2 * len(images) // 3]
    a_low, a_high = float(a.values[low_col]), float(a.values[high_col])
    b_low = float(b.values[low_col])
    lows = _numbers(images, low_col)
    mid = statistics.median(lows)
    return [
        {name: [repr(a_low)]},  # an instant at a row's lower bound: inclusive
        {name: [repr(a_high)]},  # ... and at its upper bound
        {name: [f"{a_low!r} {a_high!r}"]},
        {name: [f"-Inf {mid!r}"]}, {name: [f"{mid!r} +Inf"]}, {name: ["-Inf +Inf"]},
        {name: [repr(a_low), repr(b_low)]},  # repeated: OR
        {name: [f"{lows[-1] * 3 + 1!r} +Inf"]},
    ]


def _text(rows: Sequence[Row], column: str, name: str) -> list[Query]:
    values = sorted({str(r.values[column]) for r in rows if r.values[column] is not None})
    cases: list[Query] = [{name: [v]} for v in values[:8]]
    cases.append({name: values[:2]})  # repeated: OR
    cases.append({name: [values[0].upper() if values[0] != values[0].upper()
                         else values[0].lower()]})  # case matters: nothing
    cases.append({name: ["no such value at all"]})
    return cases


def _centre(vectors: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    x, y, z = (sum(v[i] for v in vectors) for i in range(3))
    norm = (x * x + y * y + z * z) ** 0.5
    return x / norm, y / norm, z / norm


def _pos(rows: Sequence[Row]) -> list[Query]:
    images = [r for r in _images(rows) if r.region]
    picks = [images[i * len(images) // 6] for i in range(6)]
    cases: list[Query] = []
    for k, row in enumerate(picks):
        lon, lat = _lon_lat(row.region[0])  # a corner of the footprint
        r = [0.001, 0.02, 0.3, 2.0, 10.0][k] if k < 5 else 0.0
        centre = _lon_lat(_centre(row.region)) if r == 0 else (lon, lat)  # not on an edge
        cases.append({"POS": [f"CIRCLE {centre[0]!r} {centre[1]!r} {r!r}"]})
        d = [0.001, 0.05, 0.5, 3.0, 20.0, 1.0][k]
        cases.append({"POS": [f"RANGE {max(0.0, lon - d)!r} {min(360.0, lon + d)!r} "
                              f"{max(-90.0, lat - d / 2)!r} {min(90.0, lat + d / 2)!r}"]})
        vertices = [(lon, lat - d), (lon + d * 0.9, lat + d), (lon - d * 0.8, lat + d * 0.7)]
        cases.append({"POS": ["POLYGON " + " ".join(
            f"{a % 360.0!r} {min(89.9, max(-89.9, b))!r}" for a, b in vertices)]})
    first = _lon_lat(picks[0].region[0])
    last = _lon_lat(picks[-1].region[0])
    cases += [
        {"POS": [f"CIRCLE {first[0]!r} {first[1]!r} 0.01",
                 f"CIRCLE {last[0]!r} {last[1]!r} 0.01"]},  # repeated: OR
        {"POS": [f"RANGE -Inf +Inf {first[1] - 1!r} +Inf"]},  # open bounds
        {"POS": ["RANGE -Inf +Inf -Inf +Inf"]},  # the whole sky: every footprint
        {"POS": [f"RANGE {first[0] - 2 if first[0] > 2 else 0!r} +Inf -Inf {first[1]!r}"]},
        {"POS": ["circle 0 -89.9 0.05"]},  # keyword case, a corner of the sky
    ]
    return cases


def _ids(rows: Sequence[Row]) -> list[Query]:
    images = _images(rows)
    a, b = images[0].did, images[len(images) // 2].did
    spectrum = next(r.did for r in rows if r.values["dataproduct_type"] == "spectrum")
    registry, _, local = a.partition("?")
    return [
        {"ID": [a]}, {"ID": [a, b]},
        {"ID": [registry.upper() + "?" + local]},  # the registry part is case-insensitive
        {"ID": [registry + "?" + local.upper()]},  # the local part (a path) is not
        {"ID": [spectrum]},  # SIA serves images only
        {"ID": [a + "x"]},
    ]


def parameter_cases(rows: Sequence[Row]) -> dict[str, list[Query]]:
    return {
        "POS": _pos(rows),
        "BAND": _overlap(rows, "em_min", "em_max", "BAND"),
        "TIME": _overlap(rows, "t_min", "t_max", "TIME"),
        "POL": [{"POL": ["I"]}, {"POL": ["I", "Q"]}, {"POL": ["POLA"]}],
        "FOV": _within(rows, "s_fov", "FOV"),
        "SPATRES": _within(rows, "s_resolution", "SPATRES"),
        "EXPTIME": _within(rows, "t_exptime", "EXPTIME"),
        "TIMERES": _within(rows, "t_resolution", "TIMERES"),
        "SPECRP": _within(rows, "em_res_power", "SPECRP"),
        "ID": _ids(rows),
        "COLLECTION": _text(rows, "obs_collection", "COLLECTION"),
        "FACILITY": _text(rows, "facility_name", "FACILITY"),
        "INSTRUMENT": _text(rows, "instrument_name", "INSTRUMENT"),
        "DPTYPE": [{"DPTYPE": ["image"]}, {"DPTYPE": ["cube"]}, {"DPTYPE": ["spectrum"]},
                   {"DPTYPE": ["image", "cube"]}],
        "CALIB": [{"CALIB": ["1"]}, {"CALIB": ["0"]}, {"CALIB": ["0", "1"]},
                  {"CALIB": ["2", "3", "4"]}],
        "TARGET": _text(rows, "target_name", "TARGET"),
        "FORMAT": [*_text(rows, "access_format", "FORMAT"), {"FORMAT": ["application/fits"]}],
    }


def combined_cases(rows: Sequence[Row]) -> list[Query]:
    """Different parameters AND; each case also repeats one of them."""
    images = [r for r in _images(rows) if r.region and r.values["t_exptime"] is not None]
    row = images[len(images) // 2]
    lon, lat = _lon_lat(row.region[0])
    exptime = float(row.values["t_exptime"])
    instruments = sorted({str(r.values["instrument_name"]) for r in images})
    return [
        {"POS": [f"CIRCLE {lon!r} {lat!r} 30"], "INSTRUMENT": [instruments[0]]},
        {"POS": [f"CIRCLE {lon!r} {lat!r} 30", "RANGE 0 360 -90 0"],
         "EXPTIME": [f"-Inf {exptime!r}"], "CALIB": ["1"]},
        {"INSTRUMENT": instruments, "EXPTIME": [f"{exptime!r} +Inf"], "DPTYPE": ["image"],
         "BAND": ["-Inf +Inf"]},
        {"TIME": [f"-Inf {float(row.values['t_max'])!r}"], "FOV": ["-Inf +Inf"],
         "SPATRES": ["0 +Inf"], "FACILITY": [str(row.values["facility_name"])]},
        {"ID": [row.did], "POS": [f"CIRCLE {lon!r} {lat!r} 0.5"], "TARGET":
         [str(row.values["target_name"])], "FORMAT": [str(row.values["access_format"])]},
        {"ID": [row.did], "POS": [f"CIRCLE {(lon + 180) % 360!r} {-lat!r} 0.5"]},  # AND
        {"TIMERES": [f"{exptime!r}"], "EXPTIME": [f"{exptime!r}"], "SPECRP": ["-Inf +Inf"]},
        {},  # no constraint: every visible image
    ]

"""SODA's spatial and BAND values: strict reading, containment and tracing on the sphere."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vo_service.errors import UsageFault
from vo_service.services.regions import (
    Circle,
    Polygon,
    Range,
    band_of,
    band_text,
    overlaps,
    region_of,
    trace,
    unit_vectors,
)


def _separation(lon1: object, lat1: object, lon2: object, lat2: object) -> np.ndarray:
    a = unit_vectors(np.atleast_1d(np.asarray(lon1, float)), np.atleast_1d(np.asarray(lat1, float)))
    b = unit_vectors(np.atleast_1d(np.asarray(lon2, float)), np.atleast_1d(np.asarray(lat2, float)))
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1, 1)))


def test_circle_and_polygon_and_pos_forms():
    assert region_of("CIRCLE", "12 34 0.5") == Circle(12.0, 34.0, 0.5)
    assert region_of("CIRCLE", " 12\t34  5e-1 ") == Circle(12.0, 34.0, 0.5)
    assert region_of("POS", "circle 12 34 0.5") == Circle(12.0, 34.0, 0.5)
    polygon = region_of("POLYGON", "12 34 14 34 14 36 12 36")
    assert polygon == Polygon(((12, 34), (14, 34), (14, 36), (12, 36)))
    assert region_of("POS", "POLYGON 12 34 14 34 14 36 12 36") == polygon
    assert region_of("POS", "RANGE 12 14 34 36") == Range(12, 14, 34, 36)
    assert region_of("POS", "RANGE -Inf +Inf 89 +inf") == Range(0, 360, 89, 90)
    assert region_of("POS", "RANGE 0 360 -2 2").text() == "RANGE 0 360 -2 2"


@pytest.mark.parametrize(("name", "value", "words"), [
    ("CIRCLE", "12 34", "three numbers"),
    ("CIRCLE", "12 34 0.5 1", "three numbers"),
    ("CIRCLE", "12 34 -1", "radius"),
    ("CIRCLE", "12 34 91", "radius"),
    ("CIRCLE", "361 34 1", "longitude"),
    ("CIRCLE", "-1 34 1", "longitude"),
    ("CIRCLE", "12 91 1", "latitude"),
    ("CIRCLE", "nan 34 1", "not a finite number"),
    ("CIRCLE", "inf 34 1", "not a finite number"),
    ("CIRCLE", "1e999 34 1", "beyond the range of a double"),
    ("CIRCLE", "1_0 34 1", "not a finite number"),
    ("CIRCLE", "١٢ 34 1", "not a finite number"),
    ("CIRCLE", "0x10 34 1", "not a finite number"),
    ("CIRCLE", "12,34,1", "three numbers"),
    ("POLYGON", "12 34 14 34", "at least three vertices"),
    ("POLYGON", "12 34 14 34 14", "at least three vertices"),
    ("POLYGON", "12 34 12 34 12 34", "three distinct"),
    ("POLYGON", "0 0 120 0 240 0", "hemisphere"),
    ("POLYGON", "0 0 2 2 2 0 0 2", "cross"),
    ("POLYGON", " ".join(f"{i % 90} {i // 90}" for i in range(101)), "at most 100"),
    ("POS", "BOX 12 34 1 1", "give CIRCLE"),
    ("POS", "", "give CIRCLE"),
    ("POS", "RANGE 1 2 3", "four numbers"),
    ("POS", "RANGE 1 2 40 30", "lat1 is above lat2"),
    ("POS", "RANGE 350 10 -5 5", "two POS values"),
    ("POS", "RANGE 1 2 nan 3", "not a number, -Inf or +Inf"),
    ("POS", "CIRCLE 1 2 inf", "not a finite number"),
])
def test_bad_values_say_what_to_fix(name, value, words):
    with pytest.raises(UsageFault) as caught:
        region_of(name, value)
    assert words in caught.value.message
    if name != "POS":
        assert caught.value.message.startswith(name)


@pytest.mark.parametrize(("value", "words"), [
    ("6e-7 5e-7", "above the upper bound"),
    ("nan 1", "not a number, -Inf or +Inf"),
    ("1 2 3", "not 3 numbers"),
    ("green", "not a finite number"),
])
def test_bad_bands(value, words):
    with pytest.raises(UsageFault) as caught:
        band_of(value)
    assert words in caught.value.message


def test_intervals_open_and_closed():
    band = band_of("-Inf 5e-7")
    assert band.low == -math.inf and band.high == 5e-7
    assert overlaps(band, 4e-7, 6e-7) and not overlaps(band, 5.1e-7, 6e-7)
    assert overlaps(band_of("5e-7 5e-7"), 5e-7, 6e-7)
    assert band_of("5e-7") == band_of("5e-7 5e-7")
    assert band_text(band_of("-inf +Inf")) == "-Inf +Inf"


def test_circle_contains_by_angular_distance():
    circle = Circle(10.0, 80.0, 1.0)
    lon = np.array([10.0, 10.0, 10.0, 190.0, 100.0])
    lat = np.array([80.0, 80.999, 81.001, 89.5, 80.0])
    # (100, 80) is 90 deg of longitude away at latitude 80: about 9.9 degrees
    assert circle.contains(lon, lat).tolist() == [True, True, False, False, False]
    assert Circle(0, 0, 180).contains(np.array([180.0]), np.array([0.0])).all()


@pytest.mark.parametrize("winding", [1, -1])
def test_polygon_contains_either_winding_and_concave(winding):
    # an L shape around (10, 20): the notch (10.8, 20.8) is outside
    vertices = [(9, 19), (11, 19), (11, 20), (10, 20), (10, 21), (9, 21)][::winding]
    polygon = Polygon(tuple(vertices))
    lon = np.array([9.5, 10.5, 10.8, 9.5, 12.0, 190.0])
    lat = np.array([19.5, 19.5, 20.8, 20.5, 20.0, -20.0])
    assert polygon.contains(lon, lat).tolist() == [True, True, False, True, False, False]


def test_range_across_zero_and_full_circle():
    across = Range(350, 10, -5, 5)  # SIA's reading refuses it; the test takes it
    assert across.span == 20
    lon = np.array([355.0, 5.0, 180.0, 0.0, 5.0])
    lat = np.array([0.0, 0.0, 0.0, 4.99, 6.0])
    assert across.contains(lon, lat).tolist() == [True, True, False, True, False]
    band = region_of("POS", "RANGE 0 360 -2 2")
    assert band.contains(np.array([0.0, 123.0, 359.9]), np.array([1.0, -2.0, 2.1])).tolist() \
        == [True, True, False]


def test_trace_circle_near_and_dense():
    circle = Circle(150.0, -5.0, 0.5)
    centre = unit_vectors(np.array([150.0]), np.array([-5.0]))[0]
    lon, lat = trace(circle, centre, math.radians(2.0), math.radians(1 / 3600))
    assert np.allclose(_separation(lon, lat, 150.0, -5.0), 0.5, atol=1e-9)
    step = _separation(lon[:-1], lat[:-1], lon[1:], lat[1:])
    assert step.max() <= 1.01 / 3600
    # far from the circle: nothing
    far = unit_vectors(np.array([10.0]), np.array([40.0]))[0]
    assert len(trace(circle, far, math.radians(1.0), math.radians(1 / 3600))[0]) == 0


def test_trace_long_boundary_only_near_the_image():
    """A band around the equator traced near a small frame: points only within reach,
    at most a step apart, and far fewer than the whole band at that spacing."""
    band = region_of("POS", "RANGE 0 360 -2 2")
    centre = unit_vectors(np.array([123.0]), np.array([2.0]))[0]
    reach, step = math.radians(0.1), math.radians(0.5 / 3600)
    lon, lat = trace(band, centre, reach, step)
    assert len(lon) and np.all(np.abs(lat - 2.0) < 1e-9)
    assert _separation(lon, lat, 123.0, 2.0).max() <= 0.1 + 1e-9
    assert np.diff(np.sort(lon)).max() <= 1.01 * 0.5 / 3600 / math.cos(math.radians(2))
    assert len(lon) < 5000


def test_polygon_edges_are_great_circles():
    polygon = region_of("POLYGON", "0 10 40 10 20 40")
    centre = unit_vectors(np.array([20.0]), np.array([20.0]))[0]
    lon, lat = trace(polygon, centre, math.radians(60), math.radians(0.1))
    edge = (lat < 12) & (lon > 1) & (lon < 39)
    # the great circle between (0, 10) and (40, 10) bulges north of the parallel
    assert lat[edge].max() > 10.5

"""The archive layout: one test of ``YYYY-MM/DD/<dir>/<file>`` for every part of ingest."""

from __future__ import annotations

from datetime import date

import pytest

from ingest.disk import night_of


@pytest.mark.parametrize(("relative", "night"), [
    ("2012-01/18/shane/r1.fits", date(2012, 1, 18)),
    ("1999-12/31/nickel/d.fits", date(1999, 12, 31)),
    ("2012-02/30/shane/r1.fits", None),  # no such day
    ("2012-1/18/shane/r1.fits", None),
    ("2012-01/18/shane", None),  # a directory, not a file in one
    ("2012-01/18/shane/sub/r1.fits", None),
    ("2012-01/18//r1.fits", None),
    ("+012-01/18/shane/r1.fits", None),  # int() alone would take these
    ("2012-01/ 8/shane/r1.fits", None),
    ("２０１２-01/18/shane/r1.fits", None),  # non-ASCII digits
])
def test_night_of(relative: str, night: date | None) -> None:
    assert night_of(relative) == night

"""Damaged headers never crash the readers or the mapping (property-based).

Real headers are corrupted at random (bytes overwritten, cards given random values,
the file cut short); every outcome must be a record or a rejection, and every record
must map to rows.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.fits_writer import format_card, header_bytes, load_template, template_names
from ingest.instruments import default_instrument_config_path, load_instrument_config
from ingest.obscore_map import files_row, obscore_row
from ingest.records import FileMetadata, Rejection, read_file

CONFIG = load_instrument_config(default_instrument_config_path())
TEMPLATES = template_names()
KEYWORDS = ("DATE-OBS", "DATE-BEG", "DATE", "TIME-OBS", "RA", "DEC", "CRVAL1", "CRVAL2",
            "CD1_1", "CD2_2", "CRPIX1", "CTYPE1", "CTYPE2", "EXPTIME", "EXPOSURE", "TRUITIME",
            "COADDONE", "OBJECT", "OBSTYPE", "VERSION", "INSTRUME", "NAXIS1", "NAXIS", "BITPIX",
            "EQUINOX", "LAMPSTA1", "LAMPSTAA", "FILT2NAM", "SLIT_N", "GRATNG_N", "AIRMASS")
VALUES = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.sampled_from(["99:99:99", "-00:00:00", "2019-13-40T25:61:61", "RA---TAN", "kastb",
                     "nickel_direct", "Blank25", "on", "0", "", "1e400"]),
)
DIRS = ("shane", "AO", "nickel")


def _check(raw: bytes, directory: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "2019-05" / "02" / directory / "x.fits"
        path.parent.mkdir(parents=True)
        path.write_bytes(raw)
        result = read_file(path, root, CONFIG)
        assert isinstance(result, FileMetadata | Rejection)
        if isinstance(result, FileMetadata):
            obscore = obscore_row(result, authority="a", base_url="http://x",
                                  release_date=None, data_rights="public", owner_ids=[])
            files_row(result, authority="a", release_date=None, owner_ids=[])
            assert obscore["t_min"] is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=st.sampled_from(TEMPLATES), directory=st.sampled_from(DIRS),
       edits=st.lists(st.tuples(st.sampled_from(KEYWORDS), VALUES), max_size=6))
def test_random_values(template: str, directory: str,
                       edits: list[tuple[str, object]]) -> None:
    cards = load_template(template)
    for keyword, value in edits:
        card = format_card(keyword, value)  # type: ignore[arg-type]
        for i, image in enumerate(cards):
            if image.startswith(keyword.ljust(8)):
                cards[i] = card
                break
        else:
            cards.append(card)
    _check(header_bytes(cards), directory)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=st.sampled_from(TEMPLATES), directory=st.sampled_from(DIRS),
       damage=st.lists(st.tuples(st.integers(min_value=0, max_value=20000),
                                 st.binary(min_size=1, max_size=40)), max_size=8),
       cut=st.one_of(st.none(), st.integers(min_value=0, max_value=20000)))
def test_random_bytes(template: str, directory: str, damage: list[tuple[int, bytes]],
                      cut: int | None) -> None:
    raw = bytearray(header_bytes(load_template(template)) + bytes(2880))
    for offset, chunk in damage:
        raw[offset % len(raw) : offset % len(raw) + len(chunk)] = chunk
    if cut is not None:
        raw = raw[:cut]
    _check(bytes(raw), directory)

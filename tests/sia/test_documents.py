"""The SIA documents without a server: descriptors in streamed results.

Results of many chunks (small batches, each format's writer) end with the descriptors
(``ResultInfo.resources``) and stay valid VOTable (XSD) with every row; the DataLink
descriptor refers to the FIELD the writers give obs_publisher_did; a failure mid-stream
still ends the document with them, after the error.
"""

from __future__ import annotations

import io

import pytest
from astropy.io.votable import parse

from tests.xsd import validate
from vo_service.serialize.formats import resolve_format
from vo_service.serialize.results import ResultInfo, stream_result
from vo_service.services.sia import obscore_columns
from vo_service.services.sia_documents import descriptors

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"


def _rows(count: int) -> list[tuple[object, ...]]:
    rows = []
    for i in range(count):
        row: list[object] = []
        for column in obscore_columns():
            if column.name == "obs_publisher_did":
                row.append(f"ivo://lick.test/sia?{i}")
            elif column.name == "s_region":
                row.append("{(0.1 , 0.2),(0.11 , 0.2),(0.11 , 0.21)}")
            elif column.xtype == "timestamp":
                row.append("2020-01-01 00:00:00")
            elif column.datatype == "char":
                row.append(f"text {i}")
            elif column.datatype in ("int", "long"):
                row.append(i)
            else:
                row.append(float(i) / 7)
        rows.append(tuple(row))
    return rows


@pytest.mark.parametrize("fmt", ["votable", "votable/td", "votable/b"])
def test_descriptors_close_a_streamed_result(fmt) -> None:
    rows = _rows(500)
    batches = iter([rows[i:i + 7] for i in range(0, len(rows), 7)])
    resources = descriptors("http://x/sia/query", "http://x/datalink/links",
                            obscore_columns(), {"INSTRUMENT": ["a", "b"]})
    chunks = list(stream_result(resolve_format(fmt), obscore_columns(), batches,
                                maxrec=499, info=ResultInfo(resources=resources)))
    assert len(chunks) > 10
    document = b"".join(chunks)
    root = validate(document)
    table = parse(io.BytesIO(document)).get_first_table().to_table()
    assert len(table) == 499 and table["obs_publisher_did"][498] == "ivo://lick.test/sia?498"
    names = [r.get("name") for r in root.findall(f"{VOT}RESOURCE")]
    assert names == [None, "datalink", "this"]
    assert root.findall(f"{VOT}RESOURCE")[0].get("type") == "results"
    ref = root.find(f"{VOT}RESOURCE[@name='datalink']/{VOT}GROUP/{VOT}PARAM").get("ref")
    assert root.find(f".//{VOT}FIELD[@ID='{ref}']").get("name") == "obs_publisher_did"
    status = root.findall(f"{VOT}RESOURCE/{VOT}INFO[@name='QUERY_STATUS']")
    assert status[-1].get("value") == "OVERFLOW"


def test_a_failed_stream_still_ends_with_its_descriptors() -> None:
    rows = _rows(50)

    def batches():
        yield rows[:20]
        raise RuntimeError("division by zero")

    resources = descriptors("http://x/sia/query", "http://x/datalink/links",
                            obscore_columns(), None)
    document = b"".join(stream_result(resolve_format("votable"), obscore_columns(),
                                      batches(), maxrec=100,
                                      info=ResultInfo(resources=resources)))
    root = validate(document)
    assert [r.get("name") for r in root.findall(f"{VOT}RESOURCE")] == [None, "datalink",
                                                                         "this"]
    status = root.findall(f"{VOT}RESOURCE/{VOT}INFO[@name='QUERY_STATUS']")
    assert status[-1].get("value") == "ERROR"

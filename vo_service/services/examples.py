"""The TAP examples (DALI 1.1 sect. 2.3, TAP 1.1 sect. 2.5): useful queries on Lick data.

One list serves the ``/tap/examples`` RDFa document and the web ADQL page; the test
suite runs every query against the database, so an example can never rot.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

XHTML_NS = "http://www.w3.org/1999/xhtml"
EXAMPLES_VOCAB = "http://www.ivoa.net/rdf/examples#"


@dataclass(frozen=True)
class Example:
    id: str
    name: str
    description: str
    query: str
    tables: tuple[str, ...]
    uploads: bool = False


EXAMPLES: tuple[Example, ...] = (
    Example(
        "cone", "Datasets around a position",
        "Every dataset whose footprint contains a point (here M 57, the Ring nebula), "
        "nearest pointing first. CONTAINS on s_region uses the spatial index.",
        "SELECT obs_publisher_did, target_name, instrument_name, t_min, access_url,\n"
        "       DISTANCE(POINT('ICRS', s_ra, s_dec), POINT('ICRS', 283.396, 33.029)) AS dist\n"
        "FROM ivoa.obscore\n"
        "WHERE CONTAINS(POINT('ICRS', 283.396, 33.029), s_region) = 1\n"
        "ORDER BY dist",
        ("ivoa.obscore",)),
    Example(
        "cone-radius", "Pointings within a radius",
        "Datasets pointed within 0.5 degrees of a position, using DISTANCE, which the "
        "service turns into an index-using containment.",
        "SELECT obs_id, target_name, s_ra, s_dec, t_exptime\n"
        "FROM ivoa.obscore\n"
        "WHERE DISTANCE(POINT('ICRS', s_ra, s_dec), POINT('ICRS', 83.82, -5.39)) < 0.5",
        ("ivoa.obscore",)),
    Example(
        "night-range", "Everything from a range of nights",
        "All frames taken between two dates (MJD of the exposure start), in time order.",
        "SELECT obs_id, instrument_name, target_name, t_min, t_exptime\n"
        "FROM ivoa.obscore\n"
        "WHERE t_min BETWEEN 58600 AND 58610\n"
        "ORDER BY t_min",
        ("ivoa.obscore",)),
    Example(
        "night-files", "The files of one observing night",
        "The archive table knows the observing night (local noon to noon) of each file.",
        "SELECT path, instrument, frame_type, object, exptime\n"
        "FROM lick.files\n"
        "WHERE night = '2019-05-02'\n"
        "ORDER BY date_obs",
        ("lick.files",)),
    Example(
        "instrument-filter", "Images through a filter with one instrument",
        "ShARCS science frames taken through a given science filter.",
        "SELECT f.path, f.object, f.science_filter, f.exptime, o.s_ra, o.s_dec\n"
        "FROM lick.files AS f JOIN ivoa.obscore AS o USING (obs_publisher_did)\n"
        "WHERE f.instrument = 'ShARCS' AND f.frame_type = 'science'\n"
        "  AND f.science_filter LIKE 'Ks%'",
        ("lick.files", "ivoa.obscore")),
    Example(
        "spectra-wavelength", "Spectra covering a wavelength",
        "Spectra whose wavelength range includes H-alpha (656.3 nm); em_min and em_max "
        "are in metres.",
        "SELECT obs_id, target_name, instrument_name, em_min, em_max, em_res_power\n"
        "FROM ivoa.obscore\n"
        "WHERE dataproduct_type = 'spectrum'\n"
        "  AND em_min <= 656.3e-9 AND em_max >= 656.3e-9",
        ("ivoa.obscore",)),
    Example(
        "calibrations", "Calibration frames of a science frame",
        "The bias, flat and arc frames taken the same night with the same instrument "
        "as a given science frame.",
        "SELECT cal.path, cal.frame_type AS kind, cal.exptime, cal.date_obs AS taken\n"
        "FROM lick.files AS sci\n"
        "JOIN lick.files AS cal\n"
        "  ON cal.night = sci.night AND cal.instrument = sci.instrument\n"
        "WHERE sci.filename = 'r650.fits' AND sci.night = '2019-05-02'\n"
        "  AND cal.frame_type IN ('bias', 'flat', 'arc', 'dark')\n"
        "ORDER BY kind, taken",
        ("lick.files",)),
    Example(
        "per-instrument", "How much data per instrument",
        "Counts and total exposure time per instrument and frame type.",
        "SELECT instrument, frame_type, COUNT(*) AS frames, SUM(exptime) AS total_exptime\n"
        "FROM lick.files\n"
        "GROUP BY instrument, frame_type\n"
        "ORDER BY instrument, frame_type",
        ("lick.files",)),
    Example(
        "object-name", "Find an object by name",
        "Observers type object names freely: look for the usual spellings. (ADQL 2.1 "
        "has ILIKE and LOWER for case-blind matches.)",
        "SELECT obs_id, target_name, instrument_name, t_min\n"
        "FROM ivoa.obscore\n"
        "WHERE target_name LIKE 'NGC%' OR target_name LIKE 'ngc%'\n"
        "ORDER BY t_min DESC",
        ("ivoa.obscore",)),
    Example(
        "released-recently", "Data that became public recently",
        "Datasets whose proprietary period ended in a given interval.",
        "SELECT obs_id, target_name, instrument_name, obs_release_date\n"
        "FROM ivoa.obscore\n"
        "WHERE obs_release_date BETWEEN '2020-01-01' AND '2022-12-31'\n"
        "ORDER BY obs_release_date",
        ("ivoa.obscore",)),
    Example(
        "flags", "Files that needed repairs",
        "Files whose headers had to be repaired while ingesting, with what was done.",
        "SELECT path, ingest_flags\n"
        "FROM lick.files\n"
        "WHERE ingest_flags <> ''\n"
        "ORDER BY path",
        ("lick.files",)),
    Example(
        "crossmatch", "Cross-match your own source list",
        "Upload a VOTable of sources (columns ra, dec in degrees) as table 'mine' "
        "(UPLOAD=mine,param:mine) and find the frames pointed within 2 arcminutes of "
        "each.",
        "SELECT m.*, o.obs_id, o.instrument_name, o.t_min\n"
        "FROM TAP_UPLOAD.mine AS m\n"
        "JOIN ivoa.obscore AS o\n"
        "  ON DISTANCE(POINT('ICRS', m.ra, m.dec), POINT('ICRS', o.s_ra, o.s_dec)) < 2.0/60",
        ("ivoa.obscore",), uploads=True),
)


def examples_document(examples: tuple[Example, ...] = EXAMPLES) -> bytes:
    html = etree.Element(f"{{{XHTML_NS}}}html", nsmap={None: XHTML_NS})
    head = etree.SubElement(html, f"{{{XHTML_NS}}}head")
    etree.SubElement(head, f"{{{XHTML_NS}}}title").text = "Lick Archive TAP examples"
    body = etree.SubElement(html, f"{{{XHTML_NS}}}body", vocab=EXAMPLES_VOCAB)
    etree.SubElement(body, f"{{{XHTML_NS}}}h1").text = "Lick Archive TAP examples"
    for example in examples:
        div = etree.SubElement(body, f"{{{XHTML_NS}}}div", id=example.id,
                               resource=f"#{example.id}", typeof="example")
        etree.SubElement(div, f"{{{XHTML_NS}}}h2", property="name").text = example.name
        etree.SubElement(div, f"{{{XHTML_NS}}}p").text = example.description
        etree.SubElement(div, f"{{{XHTML_NS}}}pre", property="query").text = example.query
        tables = etree.SubElement(div, f"{{{XHTML_NS}}}p")
        tables.text = "Tables: "
        for index, table in enumerate(example.tables):
            span = etree.SubElement(tables, f"{{{XHTML_NS}}}span", property="table")
            span.text = table
            if index < len(example.tables) - 1:
                span.tail = ", "
    return etree.tostring(html, xml_declaration=True, encoding="UTF-8", pretty_print=True,
                          doctype='<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML+RDFa 1.1//EN" '
                                  '"http://www.w3.org/MarkUp/DTD/xhtml-rdfa-2.dtd">')

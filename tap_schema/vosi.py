"""The VOSI 1.1 tableset document (VODataService 1.1 types) from the declaration."""

from __future__ import annotations

import functools

from lxml import etree

from tap_schema.declaration import SCHEMAS
from tap_schema.model import Table

VOSI_TABLES_NS = "http://www.ivoa.net/xml/VOSITables/v1.0"
VS_NS = "http://www.ivoa.net/xml/VODataService/v1.1"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_NSMAP = {"vosi": VOSI_TABLES_NS, "vs": VS_NS, "xsi": XSI_NS}


def _text(parent: etree._Element, tag: str, value: str | None) -> None:
    if value:
        etree.SubElement(parent, tag).text = value


def _table_element(parent: etree._Element | None, table: Table, detail: bool) -> etree._Element:
    if parent is None:
        element = etree.Element(f"{{{VOSI_TABLES_NS}}}table", nsmap=_NSMAP)
    else:
        element = etree.SubElement(parent, "table")
    element.set("type", "table")
    _text(element, "name", table.qualified_name)
    _text(element, "description", table.description)
    _text(element, "utype", table.utype)
    if not detail:
        return element
    for column in table.published_columns:
        col = etree.SubElement(element, "column", std="true" if column.std else "false")
        _text(col, "name", column.published_name)
        _text(col, "description", column.description)
        _text(col, "unit", column.unit)
        _text(col, "ucd", column.ucd)
        _text(col, "utype", column.utype)
        data_type = etree.SubElement(col, "dataType")
        data_type.set(f"{{{XSI_NS}}}type", "vs:VOTableType")
        if column.arraysize:
            data_type.set("arraysize", column.arraysize)
        if column.xtype:
            data_type.set("extendedType", column.xtype)
        data_type.text = column.datatype
        if column.indexed:
            _text(col, "flag", "indexed")
        if column.principal:
            _text(col, "flag", "principal")
        if column.nullable:
            _text(col, "flag", "nullable")
    for fk in table.foreign_keys:
        key = etree.SubElement(element, "foreignKey")
        _text(key, "targetTable", fk.target_table)
        for from_column, target_column in fk.columns:
            pair = etree.SubElement(key, "fkColumn")
            _text(pair, "fromColumn", from_column)
            _text(pair, "targetColumn", target_column)
        _text(key, "description", fk.description)
    return element


@functools.lru_cache(maxsize=2)
def tableset(detail: bool = True) -> bytes:
    """The whole tableset; ``detail=False`` is VOSI's ``detail=min`` (no columns).

    Built once per process (the declaration does not change while it runs).
    """
    root = etree.Element(f"{{{VOSI_TABLES_NS}}}tableset", nsmap=_NSMAP)
    for schema in SCHEMAS:
        element = etree.SubElement(root, "schema")
        _text(element, "name", schema.name)
        _text(element, "description", schema.description)
        _text(element, "utype", schema.utype)
        for table in schema.tables:
            if table.published:
                _table_element(element, table, detail)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def table_document(table: Table) -> bytes:
    """One table as a ``vosi:table`` document (VOSI 1.1 sect. 3.4, ``/tables/{name}``)."""
    root = _table_element(None, table, detail=True)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

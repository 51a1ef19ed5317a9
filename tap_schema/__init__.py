"""The one declaration of the published tables and what is derived from it.

From :mod:`tap_schema.declaration` come the DDL (:mod:`tap_schema.ddl`), the
TAP_SCHEMA rows (:mod:`tap_schema.rows`) and the VOSI tableset (:mod:`tap_schema.vosi`).
This package imports nothing else of the project.
"""

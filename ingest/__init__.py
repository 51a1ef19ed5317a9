"""Ingest: FITS headers of the Lick archive into ivoa.obscore and lick.files."""

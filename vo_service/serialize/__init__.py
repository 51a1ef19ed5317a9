"""Writers of protocol documents: streamed query results (VOTable, CSV, TSV, FITS),
VOTable uploads, VOSI and UWS XML."""

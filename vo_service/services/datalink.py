"""DataLink 1.1 ``links``: what can be done with each dataset, as rows of links.

For every identifier asked for, in order (DataLink 1.1 sect. 3.2: one identifier's
rows are consecutive), either the links of a dataset the requester may see —

* ``#this``: the file (``/data/file``), with its media type and size;
* ``#detached-header``: its primary header as text (``/data/header``);
* ``#preview``: a PNG rendered on demand (``/data/preview``), for files with an image;
* ``#calibration`` and the narrower ``#bias``, ``#flat``, ``#dark``: the non-science
  frames of the same instrument and night that the requester may see.  Arc lamp
  frames are ``#calibration`` with ``local_semantics`` ``calibration-arc``: the
  DataLink core vocabulary has no narrower term for them, and a relative term outside
  it is not allowed (DataLink 1.1 sect. 3.2.6); local_semantics is DataLink's way to
  tell such links apart;
* ``#cutout``: the SODA sync service (a service descriptor), for images with a
  celestial WCS —

or exactly one error row whose text is the same for an unknown identifier and for
one the requester may not see (:func:`~vo_service.services.downloads.not_visible_message`),
so that DataLink never tells whether a hidden dataset exists.  All identifiers of a
request are resolved in one transaction bound to the requester (row-level security).

The document itself is written by :mod:`vo_service.services.datalink_votable`.
Blocking: :meth:`DataLinkService.links` runs in a ``datasets`` pool thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from auth.principals import Principal
from vo_service.errors import UsageFault
from vo_service.params import Params
from vo_service.services.datasets import Dataset, DatasetLookup
from vo_service.services.descriptors import DATALINK_MEDIA_TYPE
from vo_service.services.downloads import is_fits, media_type_of, not_visible_message
from vo_service.services.previews import PNG_MEDIA_TYPE

#: The DataLink MIME type (DataLink 1.1 sect. 3.1), sent whatever the client accepts.
#: The XML ID of the SODA service descriptor that cutout rows reference.
SODA_DESCRIPTOR_ID = "soda-sync"
#: frame types with a term of their own in http://www.ivoa.net/rdf/datalink/core
_CALIBRATION_TERMS = {"bias": "#bias", "flat": "#flat", "dark": "#dark"}
_RESPONSE_FORMATS = {"votable", "application/x-votable+xml", "text/xml",
                     DATALINK_MEDIA_TYPE, "application/x-votable+xml; content=datalink"}


@dataclass(frozen=True)
class Link:
    """One row of the links table (DataLink 1.1 sect. 3.2)."""

    id: str
    semantics: str
    access_url: str | None = None
    service_def: str | None = None
    error_message: str | None = None
    description: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    content_qualifier: str | None = None
    local_semantics: str | None = None
    link_auth: str | None = None
    link_authorized: bool | None = None


@dataclass(frozen=True)
class LinksRequest:
    """The identifiers to answer; ``overflow``: more were sent than one answer takes."""

    ids: tuple[str, ...]
    overflow: bool = False


def parse_links_request(params: Params, max_ids: int) -> LinksRequest:
    """ID (repeatable) and RESPONSEFORMAT (VOTable only).

    DataLink 1.1 sect. 3.3 (ID): a service may limit the identifiers of one request; it
    then answers the first ``max_ids`` and marks the result OVERFLOW, and the client
    (pyvo's iter_datalinks) asks again for the rest.  No identifier at all is not an
    error: the answer is an empty table.
    """
    ids = list(dict.fromkeys(params.get_all("ID")))
    fmt = params.get("RESPONSEFORMAT")
    if fmt is not None and fmt.strip() and fmt.strip().lower() not in _RESPONSE_FORMATS:
        raise UsageFault(f"RESPONSEFORMAT={fmt[:60]!r} is not offered; the links come as "
                         f"VOTable ({DATALINK_MEDIA_TYPE})")
    return LinksRequest(tuple(ids[:max_ids]), overflow=len(ids) > max_ids)


@dataclass(frozen=True)
class LinkUrls:
    """The URLs of the data paths (their routes live in ``routes/downloads.py``)."""

    base_url: str

    def _url(self, path: str, did: str) -> str:
        return f"{self.base_url}{path}?ID={quote(did, safe='')}"

    def file(self, did: str) -> str:
        return self._url("/data/file", did)

    def header(self, did: str) -> str:
        return self._url("/data/header", did)

    def preview(self, did: str) -> str:
        return self._url("/data/preview", did)

    def links(self, did: str) -> str:
        return self._url("/datalink/links", did)

    @property
    def soda_sync(self) -> str:
        return f"{self.base_url}/soda/sync"


class DataLinkService:
    """Links for identifiers, as the requester may use them."""

    def __init__(self, lookup: DatasetLookup, urls: LinkUrls) -> None:
        self.lookup = lookup
        self.urls = urls

    def links(self, principal: Principal, ids: Sequence[str]) -> list[Link]:
        """Rows for each identifier in the order given (a repeated one answers once)."""
        ordered = list(dict.fromkeys(ids))
        found, calibrations = self.lookup.visible_with_calibrations(principal, ordered)
        rows: list[Link] = []
        for did in ordered:
            dataset = found.get(did)
            if dataset is None:
                rows.append(Link(id=did, semantics="#this",
                                 error_message=f"NotFoundFault: {not_visible_message(principal)}"))
                continue
            rows.extend(self._dataset_links(did, dataset, calibrations.get(did, [])))
        return rows

    def _dataset_links(self, did: str, dataset: Dataset, calibrations: list[Dataset]
                       ) -> list[Link]:
        urls = self.urls
        auth = _auth(dataset)
        kind = f"{dataset.instrument or dataset.instrument_dir} {dataset.frame_type or 'frame'}"
        rows = [
            Link(id=did, semantics="#this", access_url=urls.file(did),
                 description=f"The file {dataset.filename} ({kind}, night of "
                             f"{dataset.night.isoformat()})",
                 content_type=media_type_of(dataset.filename),
                 content_length=dataset.file_size, local_semantics="file",
                 link_auth=auth, link_authorized=True),
        ]
        if is_fits(dataset.filename):
            rows.append(Link(id=did, semantics="#detached-header", access_url=urls.header(did),
                             description="The primary FITS header as text, one card a line",
                             content_type="text/plain", local_semantics="header",
                             link_auth=auth, link_authorized=True))
        if dataset.has_image and is_fits(dataset.filename):
            rows.append(Link(id=did, semantics="#preview", access_url=urls.preview(did),
                             description="A preview image (PNG, zscale)",
                             content_type=PNG_MEDIA_TYPE, local_semantics="preview",
                             link_auth=auth, link_authorized=True))
        if dataset.celestial_wcs:
            rows.append(Link(id=did, semantics="#cutout", service_def=SODA_DESCRIPTOR_ID,
                             description="Cut out a sky region of the image (SODA sync: "
                                         "CIRCLE, POLYGON or POS)",
                             content_type=media_type_of(dataset.filename),
                             local_semantics="cutout", link_auth=auth, link_authorized=True))
        for frame in calibrations:
            frame_type = frame.frame_type or "calibration"
            rows.append(Link(
                id=did, semantics=_CALIBRATION_TERMS.get(frame_type, "#calibration"),
                access_url=urls.file(frame.did),
                description=f"{frame_type.capitalize()} frame {frame.filename} of the same "
                            f"instrument and night",
                content_type=media_type_of(frame.filename), content_length=frame.file_size,
                local_semantics=f"calibration-{frame_type}", link_auth=_auth(frame),
                link_authorized=True))
        return rows


def _auth(dataset: Dataset) -> str:
    """link_auth: public data may be fetched with or without logging in; anything
    else needs credentials (the requester has them, or it would not see the row)."""
    return "optional" if dataset.public else "true"

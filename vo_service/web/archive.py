"""HTTP handlers of the archive pages: ``/search`` (form and results), ``/dataset`` and
an observer's ``/nights``.

Thin: the search is read by :func:`vo_service.services.search.parse_search`, run by
:class:`~vo_service.services.search.SearchService` in a thread of the TAP ``query``
pool (the same admission and the same transaction bound to the requester as a TAP
query), and the page is rendered here.  A dataset page reads its links through the
DataLink service and its header through the dataset lookup, on the ``datasets``
pool, as the requester.  Downloads, headers, previews and tarballs are the existing
``/data/...`` endpoints; the pages only link to them.

The form lives in the URL (GET), so a search is a bookmark and the back button
works; everything works without JavaScript (``search.js`` only adds "select all").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from vo_service.errors import NotFoundFault
from vo_service.routes.common import principal_of, services
from vo_service.services import nights
from vo_service.services import search as s
from vo_service.services.downloads import is_fits, not_visible_message
from vo_service.web import accounts
from vo_service.web.rendering import SCRIPT_CSP

if TYPE_CHECKING:
    from vo_service.web.routes import WebPages

#: export formats offered under the results (RESPONSEFORMAT of /tap/sync)
EXPORTS = (("csv", "CSV"), ("votable", "VOTable"))


def format_ra(degrees: float | None, style: str) -> str:
    if degrees is None:
        return ""
    if style == "degrees":
        return f"{degrees:.5f}"
    total = round((degrees % 360) / 15 * 3600, 2)
    if total >= 86400:
        total -= 86400
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{seconds:05.2f}"


def format_dec(degrees: float | None, style: str) -> str:
    if degrees is None:
        return ""
    if style == "degrees":
        return f"{degrees:+.5f}"
    sign = "-" if degrees < 0 else "+"
    total = round(abs(degrees) * 3600, 1)
    whole, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{int(whole):02d}:{int(minutes):02d}:{seconds:04.1f}"


def cell(name: str, value: Any, coords: str) -> str:
    """A result value as the table shows it."""
    if value is None:
        return ""
    spec = s.FIELD_BY_NAME.get(name)
    kind = spec.kind if spec is not None else "text"
    if kind == "ra":
        return format_ra(float(value), coords)
    if kind == "dec":
        return format_dec(float(value), coords)
    if kind == "float":
        return f"{float(value):.6g}"
    if kind == "night":
        return str(value)[:10]
    if kind == "time":
        return str(value)[:19].replace("T", " ")
    return str(value)


@dataclass(frozen=True)
class RowView:
    """One result row as the table shows it (computed once, not in the template)."""

    did: str
    quoted: str  # the identifier as a URL query value
    filename: str
    fits: bool
    cells: list[str]


def row_views(page: s.Page, req: s.SearchRequest) -> list[RowView]:
    views = []
    fields = req.fields
    for row in page.rows:
        did = str(row[s.KEY_COLUMN])
        filename = str(row["filename"])
        views.append(RowView(did, quote(did, safe=""), filename, is_fits(filename),
                             [cell(name, row[name], req.coords) for name in fields]))
    return views


def _query_string(pairs: list[tuple[str, str]], **changes: str | None) -> str:
    kept = [(k, v) for k, v in pairs if k not in changes and k in s.FORM_PARAMETERS]
    kept.extend((k, v) for k, v in changes.items() if v is not None)
    return urlencode(kept)


class ArchivePages:
    """The search and dataset pages, rendered through the identity pages' plumbing."""

    def __init__(self, pages: WebPages) -> None:
        self.pages = pages

    async def search(self, request: Request) -> Response:
        found = services(request)
        principal = principal_of(request)
        pairs = [(k, v) for k, v in request.query_params.multi_items()
                 if k in s.FORM_PARAMETERS]
        values: dict[str, Any] = {
            "form": _FormState(pairs), "s": s, "errors": {}, "page": None, "rows": [],
            "count": None,
            "req": None, "adql": None, "pyvo": None, "exports": EXPORTS,
            "tar_query": None, "cell": cell, "link": lambda **c: "",
            "quote": lambda text: quote(text, safe=""), "searched": bool(pairs),
            "base_url": found.base_url,
            "tar_max_files": found.settings.downloads.tar_max_files,
        }
        if not pairs:
            return self.pages._page(request, "search.html", headers=SCRIPT_CSP, **values)
        try:
            req = s.parse_search(pairs)
        except s.FormErrors as exc:
            values["errors"] = exc.messages
            return self.pages._page(request, "search.html", 400, SCRIPT_CSP, **values,
                                    error="Some fields need fixing; see the messages "
                                          "next to them.")
        service = s.SearchService(found.tap)
        adql = s.search_adql(req)
        values.update(req=req, adql=adql, pyvo=s.pyvo_snippet(f"{found.base_url}/tap", adql),
                      tar_query=s.dids_adql(req),
                      link=lambda **c: "?" + _query_string(pairs, **c))
        if req.count_only:
            values["count"] = await found.tap.pool.run(lambda: service.count(principal, req))
        else:
            page = await found.tap.pool.run(lambda: service.page(principal, req))
            values.update(page=page, rows=row_views(page, req))
        return self.pages._page(request, "search.html", headers=SCRIPT_CSP, **values)

    async def dataset(self, request: Request) -> Response:
        found = services(request)
        principal = principal_of(request)
        did = request.query_params.get("ID", "").strip()
        if not did or len(did) > 1000 or "\x00" in did:
            return self.pages._error(request, 400, "No dataset named",
                                     "Give the dataset identifier as ?ID=ivo://...",
                                     back_path="/search", back_label="Back to the search")

        def read() -> tuple[Any, Any, str | None]:
            links = found.datalink.links(principal, [did])
            dataset = found.datasets.visible(principal, [did]).get(did)
            header = found.datasets.header(principal, did) if dataset is not None else None
            return dataset, links, header

        dataset, links, header = await found.pools.datasets.run(read)
        if dataset is None:
            return self.pages._error(request, 404, "No such dataset",
                                     str(NotFoundFault(not_visible_message(principal))),
                                     back_path="/search", back_label="Back to the search")
        owners = None
        if not dataset.public:  # who may see it: for its owners and staff
            listed = await found.pools.pages.run(
                lambda: accounts.dataset_owners(found.pools.pages, did))
            if principal.sees_everything or any(
                    o.observer_id == principal.observer_id for o in listed):
                owners = listed
        return self.pages._page(
            request, "dataset.html", d=dataset, links=[link for link in links
                                                       if link.error_message is None],
            header=header, fits=is_fits(dataset.filename), owners=owners,
            quote=lambda text: quote(text, safe=""), format_ra=format_ra,
            format_dec=format_dec)


    async def nights(self, request: Request) -> Response:
        """An observer's runs from the schedule with the archive's files of each."""
        found = services(request)
        principal = principal_of(request)
        if not principal.is_authenticated:
            return self.pages._to_login(request)
        schedule = found.pools.schedule
        runs: list[nights.RunSummary] = []
        message = None
        if principal.observer_id is None:
            message = ("Your account is not an observer's account of the schedule, so it has "
                       "no runs. The search shows every file you may see.")
        elif schedule is None:
            message = "The scheduling database is not configured on this archive."
        else:
            observer = principal.observer_id
            scheduled = await schedule.run(lambda: nights.observer_runs(schedule, observer))
            runs = await found.tap.pool.run(
                lambda: nights.summarise(found.tap, principal, scheduled))
        return self.pages._page(request, "nights.html", runs=runs, message=message,
                                quote=lambda text: quote(text, safe=""))


class _FormState:
    """The submitted values, to fill the form in again (even when they are wrong)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.pairs:
            if key == name:
                return value
        return default

    def has(self, name: str, value: str) -> bool:
        return (name, value) in self.pairs

    def fields(self) -> tuple[str, ...]:
        chosen = tuple(v for k, v in self.pairs if k == "field")
        return chosen or s.DEFAULT_FIELDS

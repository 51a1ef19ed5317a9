"""Downloads: ``/data/file``, ``/data/header``, ``/data/preview`` and ``/data/tar``.

Each handler parses its parameters, finds the dataset through the ``datasets`` pool
(row-level security as the requester), then does its blocking work on the limiter of
its purpose — disk reads on ``file_limiter``, preview rendering on
``compute_limiter``, the ADQL of a tarball on the TAP ``query`` pool — and sends the
result.  Nothing from the request reaches the filesystem except through a database
row (``DatasetLookup.file_of``).  The rules (validators, ranges, the answer for
hidden identifiers, tar planning) live in the services; docs/datalink.md describes
the URLs.
"""

from __future__ import annotations

import hashlib
import secrets
import urllib.parse
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth.principals import Principal
from vo_service.errors import NotFoundFault, UsageFault
from vo_service.factory import Services
from vo_service.params import Params
from vo_service.routes.common import (
    client_address,
    compute,
    principal_of,
    read_form,
    services,
)
from vo_service.routes.streaming import ChunkSource, ThreadedStream
from vo_service.services.datasets import Dataset
from vo_service.services.downloads import (
    FileReader,
    FileToSend,
    RangeNotSatisfiable,
    cache_control,
    cached_preview,
    content_disposition,
    is_fits,
    not_modified,
    not_visible,
    parse_ranges,
    range_applies,
)
from vo_service.services.previews import (
    PNG_MEDIA_TYPE,
    PreviewUnavailable,
    preview_key,
    render_png,
)
from vo_service.services.tap import QueryExecution, TapRequest
from vo_service.services.tarball import TarStream, check_count, plan, wants_gzip

T = TypeVar("T")


def _did(params: Params) -> str:
    return params.require("ID")


async def _dataset(found: Services, principal: Principal, did: str) -> Dataset:
    return await found.pools.datasets.run(lambda: found.downloads.dataset(principal, did))


async def _on_files(found: Services, work: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(work, limiter=found.file_limiter)


def _cache(request: Request, public: bool) -> str:
    """Shared caches may keep public data asked for anonymously, nothing else: an
    authenticated answer names its requester (X-VO-Authenticated)."""
    return cache_control(public and not principal_of(request).is_authenticated)


def _validators(request: Request, sent: FileToSend) -> dict[str, str]:
    return {"ETag": sent.etag, "Last-Modified": sent.last_modified_http,
            "Cache-Control": _cache(request, sent.public), "Accept-Ranges": "bytes"}


def send_file(request: Request, found: Services, sent: FileToSend, disposition: str
              ) -> Response:
    """The file with its validators: 304, 206 (one range or multipart), 416 or 200."""
    headers = _validators(request, sent)
    if not_modified(request.headers.get("if-none-match"),
                    request.headers.get("if-modified-since"), sent.etag, sent.last_modified):
        return Response(status_code=304, headers=headers)
    headers["Content-Disposition"] = content_disposition(disposition, sent.filename)
    accel = found.settings.downloads.accel_redirect_prefix
    if accel:
        # Access is decided; nginx sends the file itself (sendfile, Range, If-Range),
        # keeping Content-Type, Content-Disposition and Cache-Control from here.
        headers["X-Accel-Redirect"] = accel.rstrip("/") + urllib.parse.quote(str(sent.path))
        return Response(status_code=200, media_type=sent.media_type, headers=headers)
    ranges = None
    if range_applies(request.headers.get("if-range"), sent.etag, sent.last_modified):
        try:
            ranges = parse_ranges(request.headers.get("range"), sent.size)
        except RangeNotSatisfiable:
            return Response(f"the requested range is not within the {sent.size} bytes of "
                            "this file\n", status_code=416, media_type="text/plain",
                            headers={**headers, "Content-Range": f"bytes */{sent.size}"})
    chunk = found.settings.downloads.read_chunk_bytes
    media_type = sent.media_type
    status = 200
    if ranges is not None:
        status = 206
        if len(ranges) == 1:
            start, end = ranges[0]
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{sent.size}"
            reader = FileReader(sent, ranges, chunk)
        else:
            boundary = secrets.token_hex(16)
            reader = FileReader(sent, ranges, chunk, boundary)
            media_type = f"multipart/byteranges; boundary={boundary}"
    else:
        reader = FileReader(sent, None, chunk)
    source = ChunkSource(reader.next_chunk, reader.close,
                         whole_file=sent.path if ranges is None else None)
    return ThreadedStream(source, found.file_limiter, status_code=status,
                          media_type=media_type, headers=headers,
                          content_length=reader.content_length)


async def data_file(request: Request) -> Response:
    found = services(request)
    principal = principal_of(request)
    did = _did(await read_form(request, None))
    dataset = await _dataset(found, principal, did)
    sent = await _on_files(found, lambda: found.downloads.prepare(dataset))
    return send_file(request, found, sent, "attachment")


async def data_header(request: Request) -> Response:
    found = services(request)
    principal = principal_of(request)
    did = _did(await read_form(request, None))

    def read() -> tuple[Dataset, str]:
        dataset = found.downloads.dataset(principal, did)
        header = found.datasets.header(principal, did)
        if header is None:  # made hidden between the two statements
            raise not_visible(principal)
        return dataset, header

    dataset, header = await found.pools.datasets.run(read)
    if not is_fits(dataset.filename):
        raise NotFoundFault("this dataset is not a FITS file and has no header")
    text = ("\n".join(line.rstrip() for line in header.splitlines()) + "\n").encode(
        "utf-8", "replace")
    etag = f'"h-{hashlib.sha256(text).hexdigest()[:40]}"'
    headers = {"ETag": etag, "Cache-Control": _cache(request, dataset.public),
               "Content-Disposition": content_disposition(
                   "inline", f"{dataset.filename}.header.txt")}
    if not_modified(request.headers.get("if-none-match"), None, etag, None):
        return Response(status_code=304, headers=headers)
    return Response(text, media_type="text/plain; charset=utf-8", headers=headers)


async def data_preview(request: Request) -> Response:
    found = services(request)
    principal = principal_of(request)
    did = _did(await read_form(request, None))
    dataset = await _dataset(found, principal, did)
    if not (dataset.has_image and is_fits(dataset.filename)):
        raise NotFoundFault("this dataset holds no image to preview")
    sent = await _on_files(found, lambda: found.downloads.prepare(dataset))
    key = preview_key(did, sent.etag)
    etag = f'"p-{key[:40]}"'
    cache = found.previews
    name = f"{dataset.filename}.png"
    cached = await _on_files(found, lambda: cached_preview(cache, key, etag, name, sent.public))
    if cached is not None:
        return send_file(request, found, cached, "inline")
    max_size = found.settings.downloads.preview_max_size

    def render() -> bytes:
        png = render_png(sent.path, max_size)
        cache.put(key, png)
        return png

    try:
        png = await compute(found, render)
    except PreviewUnavailable as exc:
        raise NotFoundFault(f"no preview can be made of this dataset: {exc}") from None
    return Response(png, media_type=PNG_MEDIA_TYPE, headers={
        "ETag": etag, "Cache-Control": _cache(request, sent.public),
        "Content-Disposition": content_disposition("inline", name)})


async def data_tar(request: Request) -> Response:
    found = services(request)
    principal = principal_of(request)
    settings = found.settings.downloads
    # every identifier is a field; the few other parameters need room too
    params = await read_form(request, None, max_fields=settings.tar_max_files + 100)
    gzip = wants_gzip(params.get("FORMAT"))
    ids = [value for value in params.get_all("ID") if value.strip()]
    query = params.get("QUERY")
    if ids and query:
        raise UsageFault("give either ID values or a QUERY, not both")
    if query is None:
        check_count(len(ids), settings)
    key = (f"user:{principal.user_id}" if principal.is_authenticated
           else f"address:{client_address(request.scope)}")
    wait = found.tar_rate.take(key)
    if wait is not None:
        raise UsageFault(f"too many tarball requests; at most {settings.tar_burst} in a row "
                         f"and {settings.tar_per_hour} an hour: try again in {wait:.0f} s",
                         status=429, retry_after=max(1, int(wait + 0.999)))
    try:
        if query is not None:
            ids = await _query_dids(found, principal, params, settings.tar_max_files)
            check_count(len(ids), settings)
        datasets = await found.pools.datasets.run(
            lambda: found.downloads.datasets(principal, ids))
        tar_plan = await _on_files(found, lambda: plan(found.downloads, datasets, gzip,
                                                       settings))
    except BaseException:
        found.tar_rate.refund(key)
        raise
    stream = TarStream(tar_plan, settings.read_chunk_bytes, settings.tar_gzip_level)
    headers = {"Content-Disposition": content_disposition("attachment", tar_plan.filename),
               "Cache-Control": "private"}
    return ThreadedStream(ChunkSource(stream.next_chunk, stream.close), found.file_limiter,
                          media_type=tar_plan.media_type, headers=headers,
                          content_length=None if gzip else tar_plan.tar_size)


async def _query_dids(found: Services, principal: Principal, params: Params,
                      max_files: int) -> list[str]:
    """The obs_publisher_did values of an ADQL query, run by the TAP service as the
    requester (one more row than allowed, so that too many is known)."""
    tap_params = Params([("LANG", params.get("LANG") or "ADQL"),
                         ("QUERY", params.require("QUERY")), ("MAXREC", str(max_files + 1)),
                         ("RESPONSEFORMAT", "tsv")])
    tap_request: TapRequest = found.tap.parse(tap_params)

    def run() -> list[str]:
        execution = found.tap.start(principal, tap_request)
        try:
            names = [column.name.lower() for column in execution.columns]
            if "obs_publisher_did" not in names:
                raise UsageFault("the QUERY must select the obs_publisher_did column "
                                 "(e.g. SELECT obs_publisher_did FROM ivoa.obscore WHERE ...)")
            index = names.index("obs_publisher_did")
            dids: list[str] = []
            if not isinstance(execution, QueryExecution):  # only BINARY2 and CSV use COPY
                raise RuntimeError("a tarball query must run through a cursor")
            for batch in execution.batches():
                dids.extend(str(row[index]) for row in batch if row[index] is not None)
                if len(dids) > max_files:
                    break
            return dids
        finally:
            execution.close()

    return await found.tap.pool.run(run)


def routes() -> list[Route]:
    return [
        Route("/data/file", data_file, methods=["GET"]),
        Route("/data/header", data_header, methods=["GET"]),
        Route("/data/preview", data_preview, methods=["GET"]),
        Route("/data/tar", data_tar, methods=["GET", "POST"]),
    ]

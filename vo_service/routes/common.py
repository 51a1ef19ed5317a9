"""Helpers shared by the handlers: reading DALI parameters and the context."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request

from vo_service.context import AppContext
from vo_service.errors import UsageFault
from vo_service.params import Params


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.context
    return ctx


async def read_form(request: Request, max_upload_bytes: int | None
                    ) -> tuple[list[tuple[str, str]], dict[str, bytes]]:
    """The one reader of DALI parameters: the query string, then a urlencoded or
    multipart body, in order; file parts apart (name → content).

    File parts are read into memory, so their total size is bounded by
    ``max_upload_bytes`` (a 413 UsageFault beyond it).
    """
    items: list[tuple[str, str]] = list(request.query_params.multi_items())
    files: dict[str, bytes] = {}
    used = 0
    if request.method != "POST":
        return items, files
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded",
                                    "multipart/form-data")):
        return items, files
    try:
        async with request.form() as form:
            for name, value in form.multi_items():
                if not isinstance(value, UploadFile):
                    items.append((name, value))
                    continue
                budget = None if max_upload_bytes is None else max_upload_bytes - used
                content = await value.read(-1 if budget is None else budget + 1)
                used += len(content)
                if max_upload_bytes is not None and used > max_upload_bytes:
                    raise UsageFault(f"uploads are limited to {max_upload_bytes} bytes in "
                                     "total; send a smaller table", status=413)
                files[name] = content
    except UsageFault:
        raise
    except Exception as exc:  # starlette raises several types for malformed bodies
        raise UsageFault(f"cannot read the request body: {exc}") from exc
    return items, files


async def read_params(request: Request, *, max_upload_bytes: int | None = None) -> Params:
    items, files = await read_form(request, max_upload_bytes)
    return Params.from_pairs(items, files)

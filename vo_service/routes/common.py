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


async def read_params(request: Request, *, max_upload_bytes: int = 0) -> Params:
    """DALI parameters from the query string and, for POST, the form (urlencoded/multipart)."""
    pairs = list(request.query_params.multi_items())
    files: dict[str, bytes] = {}
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            try:
                form = await request.form(max_part_size=max(max_upload_bytes, 1024 * 1024))
            except Exception as exc:  # starlette raises several types for bad bodies
                raise UsageFault(f"cannot read the request body: {exc}") from exc
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    if max_upload_bytes and len(data) > max_upload_bytes:
                        raise UsageFault(f"upload {name} is larger than the limit of "
                                         f"{max_upload_bytes} bytes")
                    files[name] = data
                else:
                    pairs.append((name, value))
    return Params.from_pairs(pairs, files)

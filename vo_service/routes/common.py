"""Helpers shared by the handlers: the services, the requester, DALI parameters,
CPU work on data."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.principals import ANONYMOUS, Principal
from vo_service.database.errors import RETRY_AFTER_S
from vo_service.errors import TransientFault, UsageFault
from vo_service.factory import Services
from vo_service.params import Params
from vo_service.routes.responses import error_response

PRINCIPAL_KEY = "lick.principal"
SESSION_KEY = "lick.session"
STALE_COOKIE_KEY = "lick.stale_session_cookie"

T = TypeVar("T")


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def principal_of(request: Request) -> Principal:
    principal = request.scope.get(PRINCIPAL_KEY, ANONYMOUS)
    assert isinstance(principal, Principal)
    return principal


async def compute(found: Services, work: Callable[[], T]) -> T:
    """CPU work on data (cutouts, previews) in a thread of ``compute_limiter``.

    As with a pool's admission (docs/architecture.md), the request waits for a token
    on the event loop, holding no thread and no connection, at most
    ``database.admission_wait_s`` seconds (then 503 with Retry-After); the token is
    its own until the work ends.  The thread is started under a limiter of one of
    its own: handing ``compute_limiter`` to ``to_thread`` would make the same task
    ask it for a second token.
    """
    limiter = found.compute_limiter
    wait = found.settings.database.admission_wait_s
    with anyio.move_on_after(wait) as waited:
        await limiter.acquire()
    if waited.cancelled_caught:
        raise TransientFault(
            f"the service is busy (all {int(limiter.total_tokens)} compute threads in use "
            f"for {wait:.0f} s); try again shortly", retry_after=RETRY_AFTER_S)
    try:
        return await anyio.to_thread.run_sync(work, limiter=anyio.CapacityLimiter(1))
    finally:
        limiter.release()


def client_address(scope: Scope) -> str:
    """The client's address (the proxy's forwarded one only from trusted proxies,
    which the server applies before the app sees the request)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class BodyTooLarge(Exception):
    """The request body went beyond ``service.max_body_bytes``."""


class BodyLimit:
    """ASGI middleware bounding request bodies: 413 at once when Content-Length is
    too large, :class:`BodyTooLarge` from ``receive`` when a chunked body grows
    beyond the limit (the readers turn it into 413)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await error_response(_too_large(self.max_bytes))(scope, receive, send)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        await self.app(scope, counted, send)


def _too_large(limit: int) -> UsageFault:
    return UsageFault(f"the request body is larger than {limit} bytes; send less (large "
                      "tables go in an UPLOAD given by URL)", status=413)


async def read_form(request: Request, max_upload_bytes: int | None, *,
                    max_fields: int = 1000) -> Params:
    """The one reader of DALI parameters: the query string, then a urlencoded or
    multipart body, in order; file parts apart (name → content).

    File parts are read into memory, so their total size is bounded by
    ``max_upload_bytes`` (a 413 UsageFault beyond it); the whole body must arrive
    within ``service.body_timeout_s`` (408 otherwise); at most ``max_fields`` fields
    (a tarball names thousands of identifiers).  Names and values are checked
    (:meth:`Params.checked`).
    """
    items: list[tuple[str, str]] = list(request.query_params.multi_items())
    files: dict[str, bytes] = {}
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        timeout = services(request).settings.service.body_timeout_s
        try:
            with anyio.fail_after(timeout):
                await _read_body(request, max_upload_bytes, max_fields, items, files)
        except TimeoutError:
            raise UsageFault(f"the request body did not arrive within {timeout:.0f} s",
                             status=408) from None
    return Params.checked(items, files)


async def _read_body(request: Request, max_upload_bytes: int | None, max_fields: int,
                     items: list[tuple[str, str]], files: dict[str, bytes]) -> None:
    used = 0
    try:
        async with request.form(max_files=100, max_fields=max_fields) as form:
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
    except BodyTooLarge:
        raise _too_large(services(request).settings.service.max_body_bytes) from None
    except Exception as exc:  # starlette raises several types for malformed bodies
        raise UsageFault(f"cannot read the request body: {str(exc)[:200]}") from exc

"""A response whose body is pulled chunk by chunk from blocking code on a limiter.

Files and tarballs are read in threads of ``file_limiter`` — one thread per chunk,
never held between chunks — so more downloads than threads all progress, and none of
them takes a thread a query or a preview needs.  No database connection is held while
the body streams.  A client that goes away ends the stream (its file is closed in a
thread); a failure after the headers were sent can only break the response off, which
the client sees as a truncated transfer.

Zero-copy: when the server offers the ASGI ``http.response.pathsend`` extension and a
whole file is sent, the server sends the file itself (sendfile).  uvicorn offers no
such extension, so there the file is read in chunks of ``read_chunk_bytes``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import anyio
import anyio.to_thread
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger("lick_archive.downloads")


class ChunkSource:
    """What :class:`ThreadedStream` pulls from (blocking calls)."""

    def __init__(self, next_chunk: Callable[[], bytes | None], close: Callable[[], None],
                 whole_file: Path | None = None) -> None:
        self.next_chunk = next_chunk
        self.close = close
        #: set when the body is exactly this file (zero-copy is possible)
        self.whole_file = whole_file


class ThreadedStream(Response):
    def __init__(self, source: ChunkSource, limiter: anyio.CapacityLimiter, *,
                 status_code: int = 200, media_type: str | None = None,
                 headers: Mapping[str, str] | None = None,
                 content_length: int | None = None) -> None:
        super().__init__(status_code=status_code, media_type=media_type, headers=headers)
        self.source = source
        self.limiter = limiter
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        if content_length is not None:
            self.raw_headers.append((b"content-length", str(content_length).encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        head_only = scope.get("method", "GET").upper() == "HEAD"
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            if head_only:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            pathsend = "http.response.pathsend" in (scope.get("extensions") or {})
            if pathsend and self.source.whole_file is not None:
                await send({"type": "http.response.pathsend",
                            "path": str(self.source.whole_file)})
                return
            await until_disconnect(receive, lambda: self._send_body(send))
        except Exception as exc:
            if client_gone(exc):
                log.info("download ended early: %s", failure_reason(exc))
            else:
                log.error("download failed after the first byte; response broken off: %s",
                          failure_reason(exc))
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.source.close, limiter=self.limiter)

    async def _send_body(self, send: Send) -> None:
        while (chunk := await anyio.to_thread.run_sync(
                self.source.next_chunk, limiter=self.limiter)) is not None:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def until_disconnect(receive: Receive, send_all: Callable[[], Awaitable[None]]
                           ) -> None:
    """Run ``send_all``, stopping it as soon as the client disconnects (whose message
    the body sender would otherwise only notice when a send fails)."""
    async with anyio.create_task_group() as group:
        async def stream() -> None:
            await send_all()
            group.cancel_scope.cancel()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(stream)
        group.start_soon(watch)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def client_gone(exc: BaseException) -> bool:
    """Whether a failure while sending is only the client going away (socket errors,
    possibly grouped by a task group)."""
    return all(isinstance(leaf, OSError) for leaf in _leaves(exc))


def failure_reason(exc: BaseException) -> str:
    """One line naming every leaf of a (grouped) failure, for the log."""
    return "; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in _leaves(exc))

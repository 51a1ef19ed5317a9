"""Fetching an UPLOAD given by URL (DALI 1.1 sect. 3.4.4: http and https must work).

The service downloads on a user's behalf, so it refuses other schemes, bounds size
and time, and (unless configured otherwise) refuses hosts that resolve to private,
loopback or link-local addresses, so an upload cannot probe the internal network.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from vo_service.errors import UsageFault


def _check_host(host: str, allow_private: bool) -> None:
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as exc:
        raise UsageFault(f"cannot resolve the upload host {host!r}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        internal = (address.is_private or address.is_loopback or address.is_link_local
                    or address.is_reserved or address.is_multicast)
        if internal and not allow_private:
            raise UsageFault(f"the upload host {host!r} is in a private network; give a "
                             "public URL or upload the table inline (param:)")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects would bypass the host check; the client can resolve them itself."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def fetch_upload(url: str, *, max_bytes: int, timeout: float, allow_private: bool) -> bytes:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageFault(f"UPLOAD URL {url!r}: only http, https and param: are supported")
    _check_host(parts.hostname, allow_private)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as response:
            data: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise UsageFault(f"fetching the upload {url} failed: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise UsageFault(f"fetching the upload {url} failed: {exc}") from exc
    if len(data) > max_bytes:
        raise UsageFault(f"the upload at {url} is larger than the limit of {max_bytes} bytes")
    return data

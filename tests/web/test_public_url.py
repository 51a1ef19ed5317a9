"""Behind an https proxy under a path prefix: Secure cookies and prefixed links/redirects.

A second server whose public base URL is ``https://archive.example/lick`` (the proxy
strips ``/lick`` and terminates TLS); we talk to it directly over loopback http.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RunningServer, running_server

PUBLIC = "https://archive.example/lick"


@pytest.fixture(scope="module")
def proxied(database) -> Iterator[RunningServer]:
    with running_server(database, {"LICK_ARCHIVE_SERVICE_BASE_URL": PUBLIC}) as running:
        yield running


def test_cookies_are_secure_and_paths_prefixed(proxied, observer):
    with httpx.Client(base_url=proxied.base_url, follow_redirects=False) as http:
        page = http.get("/login")
        assert page.status_code == 200
        csrf_line = next(line for line in page.headers.get_list("set-cookie")
                         if line.startswith("lick_login_csrf="))
        assert "Secure" in csrf_line and "HttpOnly" in csrf_line
        assert 'action="/lick/login"' in page.text
        assert 'href="/lick/web/style.css"' in page.text
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match
        token = match.group(1)
        # The client keeps Secure cookies for https only: send the cookie half by hand.
        reply = http.post("/login", data={"email": observer.login,
                                          "password": observer.password,
                                          "csrf_token": token},
                          headers={"Cookie": f"lick_login_csrf={token}"})
        assert reply.status_code == 303
        assert reply.headers["location"] == "/lick/account"
        session_line = next(line for line in reply.headers.get_list("set-cookie")
                            if line.startswith("lick_session="))
        assert "Secure" in session_line and "Path=/;" in session_line + ";"
        cookie = session_line.split(";")[0].split("=", 1)[1]
        account = http.get("/account", headers={"Cookie": f"lick_session={cookie}"})
        assert account.status_code == 200
        assert observer.login in account.text
        assert http.get("/account").headers["location"] == "/lick/login?next=/lick/account"

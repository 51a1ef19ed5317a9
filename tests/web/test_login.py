"""Login and logout through the pages against a running server: cookies, CSRF, throttling."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import run_cli
from tests.web.conftest import WebClient, owner_rows, public_dids, tap_dids, tap_reply


def _set_cookies(reply: httpx.Response) -> dict[str, str]:
    """name -> the whole Set-Cookie line."""
    return {line.split("=", 1)[0]: line for line in reply.headers.get_list("set-cookie")}


def _sessions_of(database, login: str) -> int:
    return owner_rows(database, "SELECT count(*) FROM auth.sessions AS s JOIN auth.users AS u"
                      " USING (user_id) WHERE lower(u.login) = lower(%s)", (login,))[0][0]


def test_login_page_is_html_with_a_csrf_cookie(client):
    reply = client.get("/login")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.headers["cache-control"] == "no-store"
    assert "script-src" not in reply.headers["content-security-policy"]
    assert 'name="password"' in reply.text and 'type="password"' in reply.text
    line = _set_cookies(reply)["lick_login_csrf"]
    for attribute in ("HttpOnly", "Path=/", "SameSite=lax"):
        assert attribute in line
    assert "Secure" not in line  # base_url is http://


def test_login_session_works_and_logout_ends_it(client, server, observer):
    reply = client.login(observer.login, observer.password)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/account"
    line = _set_cookies(reply)["lick_session"]
    for attribute in ("HttpOnly", "Path=/", "SameSite=lax", "Max-Age="):
        assert attribute in line
    cookie = client.session_cookie
    assert cookie

    page = client.get("/account")
    assert page.status_code == 200
    assert observer.login in page.text and "web login" in page.text
    # The cookie authenticates the VO endpoints too: the owner's proprietary rows.
    seen = tap_dids(server.base_url, web=client)
    assert seen - public_dids(server.database) == set(observer.owned)

    logout = client.post("/logout", {"csrf_token": client.csrf("/account")})
    assert logout.status_code == 303
    assert logout.headers["location"] == "/login?done=logged_out"
    assert "Max-Age=0" in _set_cookies(logout)["lick_session"]
    assert client.session_cookie is None
    assert "You are logged out" in client.get("/login?done=logged_out").text

    # The old cookie, replayed, is only an anonymous visitor (and is told to drop it).
    replay = httpx.get(f"{server.base_url}/account", cookies={"lick_session": cookie})
    assert replay.status_code == 303
    assert replay.headers["location"].startswith("/login?next=/account")
    assert "Max-Age=0" in _set_cookies(replay)["lick_session"]
    stale = WebClient(server.base_url)
    stale.http.cookies.set("lick_session", cookie)
    try:
        assert tap_dids(server.base_url, web=stale) == public_dids(server.database)
    finally:
        stale.close()


def test_account_page_needs_a_login(client):
    reply = client.get("/account")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/login?next=/account"


def test_wrong_password_opens_no_session(client, server, observer):
    before = _sessions_of(server.database, observer.login)
    reply = client.login(observer.login, "not-the-password")
    assert reply.status_code == 400
    assert "Wrong email or password" in reply.text
    assert "lick_session" not in _set_cookies(reply)
    assert _sessions_of(server.database, observer.login) == before
    failures = owner_rows(server.database, "SELECT count(*) FROM auth.audit_log WHERE event ="
                          " 'login_failed' AND actor_login = %s AND details->>'method' ="
                          " 'password'", (observer.login,))[0][0]
    assert failures >= 1


@pytest.mark.parametrize("token", [None, "", "wrong-token-wrong-token-wrong"])
def test_login_without_the_csrf_token_is_refused(client, server, observer, token):
    client.csrf("/login")  # the browser holds the cookie half
    data = {"email": observer.login, "password": observer.password}
    if token is not None:
        data["csrf_token"] = token
    before = _sessions_of(server.database, observer.login)
    reply = client.post("/login", data)
    assert reply.status_code == 403
    assert reply.headers["content-type"].startswith("text/html")
    assert "lick_session" not in _set_cookies(reply)
    assert _sessions_of(server.database, observer.login) == before


def test_login_csrf_needs_the_cookie_half(server, observer, make_client):
    """A token copied from another browser's form is useless without its cookie."""
    token = make_client().csrf("/login")
    attacker = make_client()
    reply = attacker.post("/login", {"email": observer.login, "password": observer.password,
                                     "csrf_token": token})
    assert reply.status_code == 403


@pytest.mark.parametrize("token", [None, "x" * 43])
def test_logout_without_the_session_csrf_token_is_refused(client, observer, token):
    assert client.login(observer.login, observer.password).status_code == 303
    data = {} if token is None else {"csrf_token": token}
    reply = client.post("/logout", data)
    assert reply.status_code == 403
    assert client.get("/account").status_code == 200  # still logged in


def test_a_csrf_token_of_another_session_is_refused(observer, make_client):
    first, second = make_client(), make_client()
    for web in (first, second):
        assert web.login(observer.login, observer.password).status_code == 303
    reply = second.post("/logout", {"csrf_token": first.csrf("/account")})
    assert reply.status_code == 403


@pytest.mark.parametrize("target", [
    "https://evil.example/account", "//evil.example/account", "/\\evil.example",
    "javascript:alert(1)", "evil.example", "/account\r\nSet-Cookie:%20x=1",
    "http:/evil.example",
])
def test_login_never_redirects_off_site(client, observer, target):
    token = client.csrf("/login")
    reply = client.post("/login", {"email": observer.login, "password": observer.password,
                                   "csrf_token": token, "next": target})
    assert reply.status_code == 303
    assert reply.headers["location"] == "/account"


def test_login_redirects_to_a_local_next(client, observer):
    reply = client.login(observer.login, observer.password, next_path="/tap/capabilities")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/tap/capabilities"


def test_login_form_keeps_a_local_next_only(client):
    assert 'name="next" value="/admin"' in client.get("/login?next=/admin").text
    assert 'value="/account"' in client.get("/login?next=//evil.example").text


def test_throttled_logins_get_a_429_page(client, server):
    login, password = "web-throttled@lick.example", "web-throttled-password"
    run_cli(server.database, "users", "add", login, "--password", password)
    limit = server.database.settings.auth.max_failed_logins
    for _ in range(limit):
        assert client.login(login, "wrong-password").status_code == 400
    reply = client.login(login, "wrong-password")
    assert reply.status_code == 429
    assert int(reply.headers["retry-after"]) > 0
    assert reply.headers["content-type"].startswith("text/html")
    assert "Too many failed logins" in reply.text
    # Even the right password waits: guessing cannot go on by luck.
    right = client.login(login, password)
    assert right.status_code == 429
    assert "lick_session" not in _set_cookies(right)
    # HTTP Basic shares the lock (one throttle for every path).
    basic = tap_reply(server.base_url, auth=(login, password))
    assert basic.status_code == 429


@pytest.mark.parametrize("cookie", ["garbage", "x" * 300, "%00%ff", "Zm9vYmFy" * 5])
def test_a_bogus_session_cookie_is_anonymous_not_an_error(server, cookie):
    web = WebClient(server.base_url)
    web.http.cookies.set("lick_session", cookie)
    try:
        account = web.get("/account")
        assert account.status_code == 303
        login = web.get("/login")
        assert login.status_code == 200
        assert 'name="password"' in login.text
        assert tap_dids(server.base_url, web=web) == public_dids(server.database)
    finally:
        web.close()


def test_home_page_lists_services_and_examples(server):
    from vo_service.services.examples import EXAMPLES

    reply = httpx.get(f"{server.base_url}/")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert f"{server.base_url}/tap" in reply.text
    for example in EXAMPLES:
        assert example.name in reply.text

"""Personal tokens from the account page: created once in clear, used by VO clients, revoked."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import run_cli
from tests.web.conftest import owner_rows, public_dids, tap_dids, tap_reply

TOKEN_RE = re.compile(r'<code class="token">(lick_[0-9a-f]{8}_[A-Za-z0-9_-]{43})</code>')


def _tokens_of(database, login: str) -> list[tuple]:
    return owner_rows(database, "SELECT t.prefix, t.label, t.expires_at, t.revoked_at"
                      " FROM auth.tokens AS t JOIN auth.users AS u USING (user_id)"
                      " WHERE lower(u.login) = lower(%s) ORDER BY t.token_id", (login,))


def _create(client, label: str, expires: str = ""):
    return client.post("/account/tokens", {"csrf_token": client.csrf("/account"),
                                           "label": label, "expires": expires})


def test_token_lifecycle(client, server, observer):
    assert client.login(observer.login, observer.password).status_code == 303
    reply = _create(client, "web test token")
    assert reply.status_code == 201
    match = TOKEN_RE.search(reply.text)
    assert match, reply.text
    token = match.group(1)
    # Shown once: the account page lists it by prefix only.
    listing = client.get("/account").text
    assert token not in listing
    prefix = token.split("_")[1]
    assert f"lick_{prefix}_…" in listing and "web test token" in listing
    assert 'action="/account/tokens/revoke"' in listing
    assert f'name="prefix" value="{prefix}"' in listing

    bearer = {"Authorization": f"Bearer {token}"}
    seen = tap_dids(server.base_url, headers=bearer)
    assert seen - public_dids(server.database) == set(observer.owned)

    revoke = client.post("/account/tokens/revoke",
                         {"csrf_token": client.csrf("/account"), "prefix": prefix})
    assert revoke.status_code == 303
    assert revoke.headers["location"] == "/account?done=token_revoked"
    assert f"lick_{prefix}_…" not in client.get("/account").text
    refused = tap_reply(server.base_url, headers=bearer)
    assert refused.status_code == 401
    assert "WWW-Authenticate" in refused.headers
    events = owner_rows(server.database, "SELECT event, actor_login FROM auth.audit_log"
                        " WHERE target = %s ORDER BY event_id", (f"lick_{prefix}",))
    assert events == [("token_created", observer.login), ("token_revoked", observer.login)]


def test_token_with_expiry(client, server, observer):
    assert client.login(observer.login, observer.password).status_code == 303
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    reply = _create(client, "expiring", day.isoformat())
    assert reply.status_code == 201
    match = TOKEN_RE.search(reply.text)
    assert match, reply.text
    prefix = match.group(1).split("_")[1]
    stored = {p: expires for p, _label, expires, _revoked in _tokens_of(server.database,
                                                                         observer.login)}
    assert stored[prefix] == datetime.combine(day + timedelta(days=1), datetime.min.time(),
                                              tzinfo=UTC)


@pytest.mark.parametrize(("label", "expires", "message"), [
    ("", "", "give the token a label"),
    ("x" * 101, "", "longer than 100"),
    ("bad date", "next week", "is not a date"),
    ("past", "2001-01-01", "is in the past"),
])
def test_bad_token_requests_explain_themselves(client, server, observer, label, expires,
                                               message):
    assert client.login(observer.login, observer.password).status_code == 303
    before = len(_tokens_of(server.database, observer.login))
    reply = _create(client, label, expires)
    assert reply.status_code == 400
    assert message in reply.text
    assert len(_tokens_of(server.database, observer.login)) == before


@pytest.mark.parametrize("token", [None, "wrong"])
def test_token_forms_need_the_csrf_token(client, server, observer, token):
    live = run_cli(server.database, "tokens", "create", observer.login,
                   "--label", "csrf target").strip().splitlines()[-1]
    assert client.login(observer.login, observer.password).status_code == 303
    before = _tokens_of(server.database, observer.login)
    data = {"label": "csrf"}
    if token is not None:
        data["csrf_token"] = token
    assert client.post("/account/tokens", data).status_code == 403
    revoke = client.post("/account/tokens/revoke", {**data, "prefix": live.split("_")[1]})
    assert revoke.status_code == 403
    assert _tokens_of(server.database, observer.login) == before


def test_cannot_revoke_another_users_token(client, server, observer, archive):
    other = next(o for o in archive.schedule["observers"] if o["email"] != observer.login)
    token = run_cli(server.database, "tokens", "create", other["email"],
                    "--label", "theirs").strip().splitlines()[-1]
    prefix = token.split("_")[1]
    assert client.login(observer.login, observer.password).status_code == 303
    reply = client.post("/account/tokens/revoke",
                        {"csrf_token": client.csrf("/account"), "prefix": prefix})
    assert reply.status_code == 404
    assert "no live token" in reply.text
    assert tap_reply(server.base_url,
                     headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_basic_auth_sees_the_account_page_but_cannot_change_it(server, observer):
    import httpx

    auth = (observer.login, observer.password)
    page = httpx.get(f"{server.base_url}/account", auth=auth)
    assert page.status_code == 200
    assert observer.login in page.text and "HTTP Basic" in page.text
    assert 'name="csrf_token"' not in page.text
    reply = httpx.post(f"{server.base_url}/account/tokens", auth=auth,
                       data={"label": "via basic"})
    assert reply.status_code == 403
    assert "Log in to make changes" in reply.text

"""The staff admin page: accounts and override grants, with their effect on TAP rows."""

from __future__ import annotations

import httpx
import pytest

from tests.web.conftest import owner_rows, proprietary_dids, public_dids, tap_dids, tap_reply


@pytest.fixture
def staff(client, staff_account):
    assert client.login(*staff_account).status_code == 303
    return client


def _audit(database, event: str, target_like: str) -> list[tuple]:
    return owner_rows(database, "SELECT actor_login, target FROM auth.audit_log"
                      " WHERE event = %s AND target LIKE %s ORDER BY event_id",
                      (event, target_like))


def _add_user(staff, login: str, password: str, role: str = "staff") -> httpx.Response:
    return staff.post("/admin/users", {
        "csrf_token": staff.csrf("/admin"), "login": login, "first_name": "Web",
        "last_name": "Tester", "password": password, "password2": password, "role": role})


def test_anonymous_is_sent_to_login(client):
    reply = client.get("/admin")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/login?next=/admin"


def test_observers_get_a_403_page(client, server, observer):
    assert client.login(observer.login, observer.password).status_code == 303
    page = client.get("/admin")
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "Staff only" in page.text
    # A correct CSRF token does not make an observer staff.
    token = client.csrf("/account")
    for path, data in [("/admin/users", {"login": "sneaky@lick.example", "password": "x" * 12,
                                         "password2": "x" * 12}),
                       ("/admin/grants", {"user": observer.login, "program": "ANY"}),
                       ("/admin/users/active", {"login": observer.login, "active": "0"})]:
        reply = client.post(path, {"csrf_token": token, **data})
        assert reply.status_code == 403, path
    assert not owner_rows(server.database, "SELECT 1 FROM auth.users"
                          " WHERE login = 'sneaky@lick.example'")


def test_staff_creates_disables_and_enables_an_account(staff, server, staff_account):
    login, password = "web-new-staff@lick.example", "a-long-password-9"
    reply = _add_user(staff, login, password)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/admin?done=user_added"
    page = staff.get("/admin?done=user_added").text
    assert login in page and "The account is created." in page
    assert _audit(server.database, "user_added", login) == [(staff_account[0], login)]
    assert tap_reply(server.base_url, auth=(login, password)).status_code == 200

    off = staff.post("/admin/users/active", {"csrf_token": staff.csrf("/admin"),
                                             "login": login, "active": "0"})
    assert off.status_code == 303
    refused = tap_reply(server.base_url, auth=(login, password))
    assert refused.status_code == 401
    assert "WWW-Authenticate" in refused.headers
    assert _audit(server.database, "user_disabled", login) == [(staff_account[0], login)]

    on = staff.post("/admin/users/active", {"csrf_token": staff.csrf("/admin"),
                                            "login": login, "active": "1"})
    assert on.status_code == 303
    assert tap_reply(server.base_url, auth=(login, password)).status_code == 200


def test_disabling_ends_the_accounts_web_sessions(staff, server, make_client):
    login, password = "web-session-victim@lick.example", "a-long-password-8"
    assert _add_user(staff, login, password).status_code == 303
    victim = make_client()
    assert victim.login(login, password).status_code == 303
    assert victim.get("/account").status_code == 200
    off = staff.post("/admin/users/active", {"csrf_token": staff.csrf("/admin"),
                                             "login": login, "active": "0"})
    assert off.status_code == 303
    assert victim.get("/account").status_code == 303  # anonymous now: back to login


@pytest.mark.parametrize(("fields", "status", "message"), [
    ({"login": "not-an-email", "password": "long-enough-1", "password2": "long-enough-1"},
     400, "the login is the person"),
    ({"login": "web-short@lick.example", "password": "short", "password2": "short"},
     400, "at least 8 characters"),
    ({"login": "web-typo@lick.example", "password": "long-enough-1",
      "password2": "long-enough-2"}, 400, "the two passwords differ"),
    ({"login": "web-admin@lick.example", "password": "long-enough-1",
      "password2": "long-enough-1", "role": "admin"}, 403, "only an admin"),
    ({"login": "web-staff@lick.example", "password": "long-enough-1",
      "password2": "long-enough-1"}, 400, "exists already"),
])
def test_bad_account_requests_explain_themselves(staff, fields, status, message):
    reply = staff.post("/admin/users", {"csrf_token": staff.csrf("/admin"), **fields})
    assert reply.status_code == status
    assert message in reply.text
    assert "New staff account" in reply.text  # the page is shown again, forms and all


def test_staff_cannot_disable_themselves(staff, staff_account):
    reply = staff.post("/admin/users/active", {"csrf_token": staff.csrf("/admin"),
                                               "login": staff_account[0], "active": "0"})
    assert reply.status_code == 403
    assert "your own account" in reply.text


@pytest.mark.parametrize("token", [None, "forged"])
def test_admin_forms_need_the_csrf_token(staff, server, token):
    data = {"login": "web-csrf@lick.example", "password": "long-enough-1",
            "password2": "long-enough-1"}
    if token is not None:
        data["csrf_token"] = token
    assert staff.post("/admin/users", data).status_code == 403
    assert not owner_rows(server.database,
                          "SELECT 1 FROM auth.users WHERE login = 'web-csrf@lick.example'")


def test_a_grant_opens_a_proprietary_dataset_until_revoked(staff, server, staff_account):
    login, password = "web-grantee@lick.example", "a-long-password-7"
    assert _add_user(staff, login, password).status_code == 303
    # A staff account sees everything; make the grantee an ordinary local account.
    owner_rows(server.database, "UPDATE auth.users SET is_staff = false WHERE login = %s"
               " RETURNING 1", (login,))
    public = public_dids(server.database)
    assert tap_dids(server.base_url, auth=(login, password)) == public
    did = sorted(proprietary_dids(server.database))[0]

    reply = staff.post("/admin/grants", {"csrf_token": staff.csrf("/admin"), "user": login,
                                         "did": did, "note": "web test"})
    assert reply.status_code == 303, reply.text
    row = f"<td>user {login}</td><td>dataset {did}</td>"
    assert row in staff.get("/admin").text
    assert tap_dids(server.base_url, auth=(login, password)) == public | {did}
    assert _audit(server.database, "grant_created", f"user {login}%") == [
        (staff_account[0], f"user {login} → dataset {did}")]
    grant_id = owner_rows(server.database, "SELECT g.grant_id FROM auth.grants AS g JOIN"
                          " auth.users AS u USING (user_id) WHERE u.login = %s", (login,))[0][0]
    page = staff.get("/admin").text
    assert 'action="/admin/grants/revoke"' in page
    assert f'name="grant_id" value="{grant_id}"' in page

    revoke = staff.post("/admin/grants/revoke", {"csrf_token": staff.csrf("/admin"),
                                                 "grant_id": str(grant_id)})
    assert revoke.status_code == 303
    assert tap_dids(server.base_url, auth=(login, password)) == public
    assert _audit(server.database, "grant_revoked", f"user {login}%") == [
        (staff_account[0], f"user {login} → dataset {did}")]
    assert row not in staff.get("/admin").text
    assert row in staff.get("/admin?grants=all").text
    again = staff.post("/admin/grants/revoke", {"csrf_token": staff.csrf("/admin"),
                                                "grant_id": str(grant_id)})
    assert again.status_code == 404


def test_a_night_grant_with_instrument_and_expiry(staff, server, observer):
    night, instrument = owner_rows(
        server.database, "SELECT night, instrument_dir FROM lick.files"
        " WHERE obs_publisher_did = %s", (sorted(observer.owned)[0],))[0]
    reply = staff.post("/admin/grants", {
        "csrf_token": staff.csrf("/admin"), "user": observer.login,
        "night": night.isoformat(), "instrument_dir": instrument, "expires": "2099-12-31"})
    assert reply.status_code == 303, reply.text
    stored = owner_rows(server.database, "SELECT night, instrument_dir, expires_at::date"
                        " FROM auth.grants ORDER BY grant_id DESC LIMIT 1")[0]
    assert stored[0] == night and stored[1] == instrument
    assert stored[2].isoformat() == "2100-01-01"


@pytest.mark.parametrize(("fields", "message"), [
    ({"did": "ivo://x"}, "exactly one grantee"),
    ({"user": "a@b", "group": "g", "did": "ivo://x"}, "exactly one grantee"),
    ({"user": "web-staff@lick.example"}, "exactly one target"),
    ({"user": "web-staff@lick.example", "did": "ivo://x", "program": "P"},
     "exactly one target"),
    ({"user": "nobody@lick.example", "did": "ivo://x"}, "no account"),
    ({"user": "web-staff@lick.example", "night": "2024-13-01"}, "is not a date"),
    ({"user": "web-staff@lick.example", "did": "ivo://x", "instrument_dir": "shane"},
     "narrows a night grant"),
    ({"user": "web-staff@lick.example", "night": "2024-01-02", "instrument_dir": "../etc"},
     "unknown instrument directory"),
    ({"user": "web-staff@lick.example", "program": "P", "expires": "2001-01-01"},
     "in the past"),
])
def test_bad_grant_requests_explain_themselves(staff, server, fields, message):
    before = owner_rows(server.database, "SELECT count(*) FROM auth.grants")[0][0]
    reply = staff.post("/admin/grants", {"csrf_token": staff.csrf("/admin"), **fields})
    assert reply.status_code == 400
    assert message in reply.text
    assert owner_rows(server.database, "SELECT count(*) FROM auth.grants")[0][0] == before


def test_staff_page_escapes_user_text(staff, server):
    """A grant note with markup is shown as text, never as HTML."""
    reply = staff.post("/admin/grants", {"csrf_token": staff.csrf("/admin"),
                                         "user": "web-staff@lick.example", "program": "XSS",
                                         "note": "<b>bold</b><script>x()</script>"})
    assert reply.status_code == 303
    page = staff.get("/admin").text
    assert "<script>x()</script>" not in page
    assert "&lt;script&gt;x()&lt;/script&gt;" in page

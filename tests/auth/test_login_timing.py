"""Login timing tells nothing: a refusal takes as long whatever the account.

Before, a wrong password on an observer's ``$apr1$`` account answered in ~7 ms and an
unknown login in ~50 ms (it verified a dummy argon2 hash).  Now every check runs one
argon2 and one MD5-crypt verification and the same two statements.  Measured through
the middleware's own call, with its credential cache (a cache miss must look like an
unknown login), interleaved and by medians so that a busy shared machine does not
decide the result; a leak of the old size fails every round.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta

from passlib.hash import apr_md5_crypt

from auth import users
from auth.credentials import Refusal, authenticate_request
from auth.passwords import VerifiedCredentialCache
from auth.throttle import ThrottlePolicy
from tests.auth.timing import assert_alike

OPEN = ThrottlePolicy(max_failures_per_login=10**6, max_failures_per_address=10**6,
                      window=timedelta(minutes=1))
CASES = {
    "unknown login": "nobody@example.org",
    "argon2 account, wrong password": "local@example.org",
    "apr1 account, wrong password": "observer@example.org",
    "disabled account": "disabled@example.org",
}


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def test_refusals_take_the_same_time_whatever_the_account(owner) -> None:
    users.add_user(owner, "local@example.org", "local-password")
    users.add_user(owner, "disabled@example.org", "disabled-password")
    users.disable_user(owner, "disabled@example.org")
    with owner, owner.cursor() as cur:
        cur.execute("INSERT INTO auth.users (observer_id, login, email, password_hash, is_local)"
                    " VALUES (42, %s, %s, %s, false)",
                    ("observer@example.org", "observer@example.org",
                     apr_md5_crypt.hash("observer-password")))
    cache = VerifiedCredentialCache()
    ok = authenticate_request(owner, authorization=basic("local@example.org", "local-password"),
                              session_cookie=None, address="198.51.100.250", policy=OPEN,
                              cache=cache)
    assert not isinstance(ok, Refusal) and len(cache) == 1, "the cache is in play"

    def refused(login: str) -> Callable[[int], object]:
        def attempt(i: int) -> None:
            outcome = authenticate_request(
                owner, authorization=basic(login, f"wrong-{i}"), session_cookie=None,
                address=f"198.51.100.{i % 200}", policy=OPEN, cache=cache)
            assert isinstance(outcome, Refusal) and outcome.status == 401
        return attempt

    assert_alike({case: refused(login) for case, login in CASES.items()})
    assert len(cache) == 1, "wrong passwords never enter the cache"

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
import random
import statistics
import time
from datetime import timedelta

import psycopg2.extensions
from passlib.hash import apr_md5_crypt

from auth import users
from auth.credentials import Refusal, authenticate_request
from auth.passwords import VerifiedCredentialCache
from auth.throttle import ThrottlePolicy

OPEN = ThrottlePolicy(max_failures_per_login=10**6, max_failures_per_address=10**6,
                      window=timedelta(minutes=1))
ATTEMPTS = 15
MAX_RATIO = 1.5
ROUNDS = 3

CASES = {
    "unknown login": "nobody@example.org",
    "argon2 account, wrong password": "local@example.org",
    "apr1 account, wrong password": "observer@example.org",
    "disabled account": "disabled@example.org",
}


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def measure(conn: psycopg2.extensions.connection, cache: VerifiedCredentialCache,
            attempts: int) -> dict[str, float]:
    """Median seconds per case over ``attempts`` interleaved rounds (in random order)."""
    times: dict[str, list[float]] = {case: [] for case in CASES}
    order = list(CASES)
    for i in range(attempts):
        random.shuffle(order)
        for case in order:
            header = basic(CASES[case], f"wrong-{i}")
            start = time.perf_counter()
            outcome = authenticate_request(conn, authorization=header, session_cookie=None,
                                           address=f"198.51.100.{i}", policy=OPEN, cache=cache)
            times[case].append(time.perf_counter() - start)
            assert isinstance(outcome, Refusal) and outcome.status == 401
    return {case: statistics.median(values) for case, values in times.items()}


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
    measure(owner, cache, 3)  # warm-up: dummy hashes, plans, caches
    rounds = []
    for _ in range(ROUNDS):
        medians = measure(owner, cache, ATTEMPTS)
        rounds.append(medians)
        if max(medians.values()) / min(medians.values()) < MAX_RATIO:
            break
    shown = [{case: f"{1000 * t:.1f} ms" for case, t in medians.items()} for medians in rounds]
    assert max(medians.values()) / min(medians.values()) < MAX_RATIO, shown
    assert len(cache) == 1, "wrong passwords never enter the cache"

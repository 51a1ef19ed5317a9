"""Password hashes: real Apache $apr1$ lines, local argon2, unknown-user timing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from passlib.hash import apr_md5_crypt, pbkdf2_sha256

from auth.passwords import (
    VerifiedCredentialCache,
    hash_password,
    identify,
    needs_rehash,
    verify_password,
)
from tests.auth.timing import assert_alike

DATA = Path(__file__).resolve().parent.parent / "data" / "auth"


def _htpasswd() -> list[tuple[str, str, str]]:
    lines = [ln for ln in (DATA / "htpasswd").read_text().splitlines()
             if ln and not ln.startswith("#")]
    passwords = (DATA / "passwords.txt").read_text(encoding="utf-8").split("\n")
    vectors = []
    for line, password in zip(lines, passwords, strict=False):
        login, stored = line.split(":", 1)
        vectors.append((login, stored, password))
    return vectors


@pytest.mark.parametrize(("login", "stored", "password"), _htpasswd())
def test_apr1_vectors_verify(login: str, stored: str, password: str) -> None:
    assert identify(stored) == "apr_md5_crypt"
    assert verify_password(password, stored)
    assert not verify_password(password + "x", stored)
    assert not needs_rehash(stored), "observers' hashes belong to the schedule: never upgraded"


def test_local_hash_is_argon2id_and_verifies() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not needs_rehash(stored)
    assert hash_password("correct horse battery") != stored, "salted"


def test_pbkdf2_accepted_and_upgraded() -> None:
    stored = pbkdf2_sha256.hash("old local password")
    assert verify_password("old local password", stored)
    assert needs_rehash(stored)


@pytest.mark.parametrize("stored", [None, "", "plaintext", "$1$broken", "!disabled"])
def test_unusable_hashes_never_verify(stored: str | None) -> None:
    assert not verify_password("plaintext", stored)
    assert not verify_password("", stored)


def test_every_check_costs_the_same_whatever_the_hash() -> None:
    """One argon2 and one MD5-crypt run each: the observer's cheap $apr1$ hash used to
    answer ~100 times faster than an unknown login."""
    hashes = {"argon2": hash_password("a password"), "apr1": apr_md5_crypt.hash("a password"),
              "unknown": None, "unusable": "!disabled"}

    def check(h: str | None) -> Callable[[int], None]:
        def attempt(_: int) -> None:
            assert not verify_password("wrong guess", h)
        return attempt

    assert_alike({name: check(h) for name, h in hashes.items()}, attempts=11, rounds=5)


def test_cache_remembers_only_verified_pairs_bound_to_the_hash() -> None:
    cache = VerifiedCredentialCache(ttl_seconds=60)
    stored = hash_password("pass-word-1")
    assert cache.verify("u@x", "pass-word-1", stored)
    start = time.perf_counter()
    assert cache.verify("U@X", "pass-word-1", stored)
    assert time.perf_counter() - start < 0.005, "a repeat does not re-hash"
    assert not cache.verify("u@x", "pass-word-2", stored)
    changed = hash_password("pass-word-1")
    assert cache.verify("u@x", "pass-word-1", changed)
    assert not cache.verify("u@x", "pass-word-1", hash_password("other"))
    expired = VerifiedCredentialCache(ttl_seconds=0)
    assert expired.verify("u@x", "pass-word-1", stored)
    assert not expired.verify("u@x", "nope", stored)


def test_cache_recalls_nothing_for_unknown_logins_and_stays_bounded() -> None:
    cache = VerifiedCredentialCache(ttl_seconds=60, max_entries=2)
    assert not cache.recall("u@x", "pw", None)
    for i in range(3):
        cache.remember(f"u{i}@x", "pw", "$hash$")
    assert len(cache) == 2 and not cache.recall("u0@x", "pw", "$hash$"), "oldest evicted"
    assert cache.recall("u2@x", "pw", "$hash$") and not cache.recall("u2@x", "pw", "$other$")

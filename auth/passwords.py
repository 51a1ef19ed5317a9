"""Password hashes: Apache ``$apr1$`` for synced observers, argon2 for local accounts.

Observers' hashes come from the scheduling database, which Apache also reads, so they
are verified and stored exactly as they are (never upgraded: the next sync would
overwrite the upgrade anyway).  Accounts created here get argon2id, with PBKDF2-SHA256
still accepted so that a database written where argon2 was unavailable keeps working.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict

from passlib.context import CryptContext
from passlib.hash import apr_md5_crypt

LOCAL_SCHEME = "argon2"
SYNCED_SCHEME = "apr_md5_crypt"

# argon2id with the OWASP minimum (19 MiB, 2 passes): a login costs tens of
# milliseconds, not the hundreds the library default takes on a small server.
_CONTEXT = CryptContext(
    schemes=[LOCAL_SCHEME, "pbkdf2_sha256", SYNCED_SCHEME],
    default=LOCAL_SCHEME,
    deprecated=["pbkdf2_sha256"],
    argon2__memory_cost=19456,
    argon2__time_cost=2,
    argon2__parallelism=1,
    argon2__type="ID",
)

# Real hashes of a random password in each scheme, checked in place of the one a
# credential does not have, so that every check costs the same (see verify_password).
_DUMMY_HASHES: dict[str, str] = {}
_DUMMY_LOCK = threading.Lock()


def hash_password(password: str) -> str:
    """A new hash for a local account (argon2id)."""
    return str(_CONTEXT.hash(password))


def identify(password_hash: str) -> str | None:
    """The scheme name of a stored hash, or None when it is not one we accept."""
    try:
        scheme = _CONTEXT.identify(password_hash)
    except (ValueError, TypeError):
        return None
    return None if scheme is None else str(scheme)


def _dummy_hash(scheme: str) -> str:
    """A hash of a random password in ``scheme``, made on first use (with our argon2
    parameters, so that the dummy costs what a real local hash costs)."""
    with _DUMMY_LOCK:
        if scheme not in _DUMMY_HASHES:
            secret = secrets.token_urlsafe(16)
            made = _CONTEXT.hash(secret) if scheme == LOCAL_SCHEME else apr_md5_crypt.hash(secret)
            _DUMMY_HASHES[scheme] = str(made)
        return _DUMMY_HASHES[scheme]


def _matches(password: str, password_hash: str) -> bool:
    try:
        return bool(_CONTEXT.verify(password, password_hash))
    except (ValueError, TypeError):  # a malformed stored hash, a password passlib refuses
        return False


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches; the work done does not depend on the hash.

    Every check runs exactly one argon2 and one ``$apr1$`` verification: the stored
    hash's own scheme against the stored hash, the other against a dummy hash.  So an
    unknown login (``password_hash=None``), a disabled or password-less account, an
    observer's cheap ``$apr1$`` hash and a local argon2 hash all cost one argon2 run
    (tens of ms) plus one MD5-crypt run (under 1 ms): timing does not tell which logins
    exist nor what kind of account they are.  Legacy PBKDF2 hashes (local accounts
    written where argon2 was missing, rehashed at their next login) cost a PBKDF2 run
    more.
    """
    stored = password_hash or ""
    scheme = identify(stored) if stored else None
    argon2_ok = _matches(password, stored if scheme == LOCAL_SCHEME else
                         _dummy_hash(LOCAL_SCHEME))
    apr1_ok = _matches(password, stored if scheme == SYNCED_SCHEME else
                       _dummy_hash(SYNCED_SCHEME))
    if scheme == LOCAL_SCHEME:
        return argon2_ok
    if scheme == SYNCED_SCHEME:
        return apr1_ok
    return scheme is not None and _matches(password, stored)


def needs_rehash(password_hash: str) -> bool:
    """Whether a local account's hash should be replaced at its next successful login.

    ``$apr1$`` hashes are never reported: they belong to the scheduling database.
    """
    if identify(password_hash) == SYNCED_SCHEME:
        return False
    try:
        return bool(_CONTEXT.needs_update(password_hash))
    except (ValueError, TypeError):
        return False


class VerifiedCredentialCache:
    """Remembers recently verified (login, password) pairs for a short time.

    VO clients send HTTP Basic credentials with every request; re-running argon2 each
    time would make a TAP session slow and the server easy to load.  Entries are keyed
    by an HMAC with a per-process random key (never the password itself) and bound to
    the stored hash, so a password change or a sync that changes the hash invalidates
    them at once.
    """

    def __init__(self, ttl_seconds: float = 300.0, max_entries: int = 4096) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, login: str, password: str, password_hash: str) -> bytes:
        message = b"\0".join(
            part.encode("utf-8") for part in (login.lower(), password, password_hash)
        )
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def recall(self, login: str, password: str, password_hash: str | None) -> bool:
        """Whether this pair was verified against this very hash within the TTL.

        Only :meth:`remember` adds entries, and only verified pairs are remembered, so a
        wrong password never finds one (the key covers the password).  An unknown login
        (no hash) is never recalled: it costs a full check like any cache miss.
        """
        if password_hash is None:
            return False
        key = self._digest(login, password, password_hash)
        now = time.monotonic()
        with self._lock:
            expires = self._entries.get(key)
            if expires is not None and expires > now:
                self._entries.move_to_end(key)
                return True
            self._entries.pop(key, None)
        return False

    def remember(self, login: str, password: str, password_hash: str) -> None:
        """Record a pair that :func:`verify_password` has just accepted."""
        key = self._digest(login, password, password_hash)
        with self._lock:
            self._entries[key] = time.monotonic() + self._ttl
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def verify(self, login: str, password: str, password_hash: str | None) -> bool:
        """Same answer as :func:`verify_password`, cheaper when recently seen."""
        if self.recall(login, password, password_hash):
            return True
        if not verify_password(password, password_hash):
            return False
        assert password_hash is not None
        self.remember(login, password, password_hash)
        return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

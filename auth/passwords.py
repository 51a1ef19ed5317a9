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

# A real hash of a random password, verified when the login is unknown so that the
# reply takes as long as for a known login with a wrong password.
_DUMMY_HASH: list[str] = []
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


def _dummy_hash() -> str:
    with _DUMMY_LOCK:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(str(_CONTEXT.hash(secrets.token_urlsafe(16))))
        return _DUMMY_HASH[0]


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches; an absent or unusable hash costs the same time.

    ``password_hash=None`` is the unknown-user case: a dummy argon2 hash is checked
    so that timing does not tell which logins exist.
    """
    if password_hash is None or identify(password_hash) is None:
        _CONTEXT.verify(password, _dummy_hash())
        return False
    try:
        return bool(_CONTEXT.verify(password, password_hash))
    except (ValueError, TypeError):
        return False


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

    def verify(self, login: str, password: str, password_hash: str | None) -> bool:
        """Same answer as :func:`verify_password`, cheaper when recently seen."""
        if password_hash is None:
            return verify_password(password, None)
        key = self._digest(login, password, password_hash)
        now = time.monotonic()
        with self._lock:
            expires = self._entries.get(key)
            if expires is not None and expires > now:
                self._entries.move_to_end(key)
                return True
            self._entries.pop(key, None)
        if not verify_password(password, password_hash):
            return False
        with self._lock:
            self._entries[key] = now + self._ttl
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

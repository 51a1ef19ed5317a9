"""Reading the identity pages' forms: pure functions, no HTTP, no database.

Each parser takes the submitted fields and returns a typed request or raises
:class:`FormError` with a message that says what to fix; the page shows it next to
the form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit

DEFAULT_AFTER_LOGIN = "/account"
MAX_LABEL = 100
MAX_NOTE = 500


class FormError(ValueError):
    """A form value that cannot be used; the message says what to fix."""


def field(form: Mapping[str, str], name: str) -> str:
    return (form.get(name) or "").strip()


def safe_next(value: str | None, root: str = "", default: str = DEFAULT_AFTER_LOGIN) -> str:
    """Where to go after login: only a path on this site, never another host.

    ``//evil.example``, ``/\\evil.example``, ``https://…`` and anything with control
    characters would let a crafted login link send the user elsewhere (an open
    redirect), so they fall back to ``default``.
    """
    fallback = root + default
    if not value or len(value) > 2000:
        return fallback
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return fallback
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return fallback
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return fallback
    return value


def parse_expiry(text: str, today: date) -> datetime | None:
    """An optional ``YYYY-MM-DD``: valid through that day, so it ends at the next midnight UTC."""
    text = text.strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise FormError(f"expiry {text!r} is not a date; use YYYY-MM-DD or leave it empty") \
            from None
    if day < today:
        raise FormError(f"expiry {day.isoformat()} is in the past; pick today or a later day")
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


@dataclass(frozen=True)
class TokenRequest:
    label: str
    expires_at: datetime | None


def token_request(form: Mapping[str, str], today: date) -> TokenRequest:
    label = field(form, "label")
    if not label:
        raise FormError("give the token a label (e.g. the machine or script that uses it)")
    if len(label) > MAX_LABEL:
        raise FormError(f"the label is longer than {MAX_LABEL} characters")
    return TokenRequest(label, parse_expiry(field(form, "expires"), today))


@dataclass(frozen=True)
class UserRequest:
    login: str
    password: str
    first_name: str
    last_name: str
    is_admin: bool


def user_request(form: Mapping[str, str]) -> UserRequest:
    role = field(form, "role") or "staff"
    if role not in ("staff", "admin"):
        raise FormError("the role is staff or admin")
    login = field(form, "login")
    if "@" not in login:
        raise FormError("the login is the person's email address")
    password = form.get("password") or ""
    if password != (form.get("password2") or ""):
        raise FormError("the two passwords differ")
    return UserRequest(login, password, field(form, "first_name"), field(form, "last_name"),
                       role == "admin")


@dataclass(frozen=True)
class GrantRequest:
    user_login: str | None
    group_name: str | None
    did: str | None
    night: date | None
    instrument_dir: str | None
    program: str | None
    expires_at: datetime | None
    note: str


def grant_request(form: Mapping[str, str], today: date,
                  instrument_dirs: tuple[str, ...]) -> GrantRequest:
    """Exactly one grantee and one target; the auth layer checks the combination again."""
    user, group = field(form, "user") or None, field(form, "group") or None
    if (user is None) == (group is None):
        raise FormError("fill in exactly one grantee: a user login or a group name")
    did, program = field(form, "did") or None, field(form, "program") or None
    night_text, instrument = field(form, "night"), field(form, "instrument_dir") or None
    night = None
    if night_text:
        try:
            night = date.fromisoformat(night_text)
        except ValueError:
            raise FormError(f"night {night_text!r} is not a date; use YYYY-MM-DD (the date "
                            "of the evening the night began)") from None
    if sum(x is not None for x in (did, night, program)) != 1:
        raise FormError("fill in exactly one target: a dataset DID, a night or a program")
    if instrument is not None:
        if night is None:
            raise FormError("an instrument directory narrows a night grant; give the night")
        if instrument not in instrument_dirs:
            raise FormError(f"unknown instrument directory {instrument!r}; one of "
                            f"{', '.join(instrument_dirs)}")
    note = field(form, "note")
    if len(note) > MAX_NOTE:
        raise FormError(f"the note is longer than {MAX_NOTE} characters")
    return GrantRequest(user, group, did, night, instrument, program,
                        parse_expiry(field(form, "expires"), today), note)


def grant_id(form: Mapping[str, str]) -> int:
    text = field(form, "grant_id")
    if not text.isdigit():
        raise FormError("no grant selected")
    return int(text)

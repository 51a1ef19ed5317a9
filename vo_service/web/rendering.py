"""The pages' HTML: a Jinja2 environment over ``templates/`` and the response headers.

Autoescaping is on for every template, so values from users and the database (logins,
labels, grant notes) cannot inject markup.  Pages carry per-user data, CSRF tokens
and once-shown tokens, hence ``no-store``; they use no script, hence a CSP that
allows none, except the search page, which loads the site's own ``search.js`` (no
inline script): :data:`SCRIPT_CSP`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self';"
                               " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

#: The policy of a page that runs the site's own scripts (and no inline script).
SCRIPT_CSP = {"Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"]
              .replace("default-src 'none';", "default-src 'none'; script-src 'self';")}


def utc(value: datetime | None, empty: str = "") -> str:
    """A timestamp as staff and observers read it: minutes, in UTC, labelled."""
    if value is None:
        return empty
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vo_service.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["utc"] = utc
    return env


def static_file(name: str) -> bytes:
    return resources.files("vo_service.web").joinpath(f"static/{name}").read_bytes()


def stylesheet() -> bytes:
    return static_file("style.css")


def render(env: jinja2.Environment, template: str, values: dict[str, Any]) -> str:
    return env.get_template(template).render(values)

"""HTTP handlers of the identity pages: ``/login``, ``/logout``, ``/account``, ``/admin``
(and the routes of the archive pages, :mod:`vo_service.web.archive`).

Thin: read the form, check the CSRF token, call :mod:`vo_service.web.accounts` in a
worker thread, render a template or redirect (POST → 303 → GET).  Every change needs
a web session and its CSRF token: browsers replay cookies *and* cached Basic
credentials on cross-site requests, so only a token the attacker cannot read proves
the form came from our page.  The login form, before any session exists, is
protected by a double-submit token (a cookie and a hidden field that must match).
Error pages here are HTML; the DALI error documents are for the VO endpoints.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import jinja2
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from auth.principals import ANONYMOUS, Principal
from auth.sessions import COOKIE_NAME, Session, csrf_matches
from vo_service.database.pool import Pool
from vo_service.errors import ServiceError
from vo_service.factory import Services
from vo_service.routes.common import (
    PRINCIPAL_KEY,
    SESSION_KEY,
    STALE_COOKIE_KEY,
    client_address,
    services,
)
from vo_service.services.examples import EXAMPLES
from vo_service.web import accounts, forms
from vo_service.web.adql import AdqlPages
from vo_service.web.archive import ArchivePages
from vo_service.web.rendering import (
    SECURITY_HEADERS,
    environment,
    render,
    static_file,
    stylesheet,
)

LOGIN_CSRF_COOKIE = "lick_login_csrf"
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_MAX_FORM_FIELDS = 40

# Fixed texts for ?done=…: a redirect never reflects user input into the page.
NOTICES = {
    "logged_out": "You are logged out.",
    "token_revoked": "The token is revoked; clients using it now get 401.",
    "user_added": "The account is created.",
    "user_disabled": "The account is disabled; its sessions have ended.",
    "user_enabled": "The account is enabled again.",
    "grant_created": "The grant is in force from the next query.",
    "grant_revoked": "The grant is revoked.",
    "job_created": "The job is queued; it appears in your job list below.",
    "job_deleted": "The job and its result are deleted.",
}

METHOD_LABELS = {
    "session": "web login", "password": "web login", "basic": "HTTP Basic",
    "token": "personal token",
}

Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


@dataclass(frozen=True)
class _Post:
    """A checked state-changing request: who, their session, the submitted fields."""

    principal: Principal
    session: Session
    form: dict[str, str]


class _Refusal(Exception):
    """Stop handling and send this response (a redirect to login, a 403 page)."""

    def __init__(self, response: Response) -> None:
        super().__init__("refused")
        self.response = response


class WebPages:
    """The handlers, sharing one template environment (built by :func:`web_routes`)."""

    def __init__(self, env: jinja2.Environment, css: bytes,
                 instrument_dirs: tuple[str, ...], script: bytes = b"") -> None:
        self.env = env
        self.css = css
        self.script = script
        self.instrument_dirs = instrument_dirs

    # --- plumbing ----------------------------------------------------------------

    @staticmethod
    async def _db(request: Request, work: Callable[[Pool], T]) -> T:
        """``work`` in a worker thread of the pages' pool, handed that pool."""
        pool = services(request).pools.pages
        return await pool.run(lambda: work(pool))

    @staticmethod
    def _root(ctx: Services) -> str:
        """The path prefix of the public base URL (empty when served at the root)."""
        return urlsplit(ctx.base_url).path.rstrip("/")

    @staticmethod
    def _secure(ctx: Services) -> bool:
        return ctx.base_url.lower().startswith("https:")

    def _page(self, request: Request, template: str, status: int = 200,
              headers: dict[str, str] | None = None, **values: Any) -> Response:
        ctx = services(request)
        principal = _principal(request)
        session = _session(request)
        settings = ctx.settings.service
        merged: dict[str, Any] = {
            "root": self._root(ctx), "site_title": settings.title,
            "short_name": settings.short_name, "publisher": settings.publisher,
            "principal": principal, "session": session,
            "csrf_token": session.csrf_token if session is not None else None,
            "notice": NOTICES.get(request.query_params.get("done", "")),
            "error": None, "today": accounts.utc_today().isoformat(),
            "new_token": None, "new_token_info": None, "status": status,
        }
        merged.update(values)
        response = HTMLResponse(render(self.env, template, merged), status_code=status,
                                headers={**SECURITY_HEADERS, **(headers or {})})
        return self._finish(request, response)

    def _error(self, request: Request, status: int, heading: str, message: str, *,
               retry_after: int | None = None, back_path: str = "/account",
               back_label: str = "Back to your account") -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return self._page(request, "error.html", status, headers, heading=heading,
                          message=message, retry_after=retry_after, back_path=back_path,
                          back_label=back_label)

    def _redirect(self, request: Request, path: str) -> Response:
        """303 to a local ``path`` (relative to the service root unless already rooted)."""
        root = self._root(services(request))
        target = path if root and path.startswith(root + "/") else root + path
        return self._finish(request, RedirectResponse(target, status_code=303,
                                                      headers=dict(SECURITY_HEADERS)))

    def _finish(self, request: Request, response: Response) -> Response:
        """Drop a session cookie that names no live session (expired, logged out)."""
        if request.scope.get(STALE_COOKIE_KEY):
            self._clear_cookie(request, response, COOKIE_NAME)
        return response

    def _set_cookie(self, request: Request, response: Response, name: str, value: str,
                    max_age: int | None) -> None:
        ctx = services(request)
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                            samesite="lax", secure=self._secure(ctx))

    def _clear_cookie(self, request: Request, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", httponly=True, samesite="lax",
                               secure=self._secure(services(request)))

    def _to_login(self, request: Request) -> Response:
        here = self._root(services(request)) + request.url.path.removeprefix(
            self._root(services(request)))
        return self._redirect(request, f"/login?next={quote(here, safe='/')}")

    async def _form(self, request: Request) -> dict[str, str]:
        """The submitted text fields (first value of each); files are refused."""
        try:
            form = await request.form(max_files=0, max_fields=_MAX_FORM_FIELDS)
        except Exception:  # starlette raises several types for malformed bodies
            raise _Refusal(self._error(request, 400, "Unreadable form",
                                       "The form could not be read; reload the page and "
                                       "submit it again.")) from None
        fields: dict[str, str] = {}
        for name, value in form.multi_items():
            if not isinstance(value, UploadFile):
                fields.setdefault(name, value)
        return fields

    async def _checked_post(self, request: Request, *, staff: bool = False) -> _Post:
        """A change request: logged in with a web session, the right CSRF token, the role."""
        principal = _principal(request)
        if not principal.is_authenticated:
            raise _Refusal(self._to_login(request))
        session = _session(request)
        if session is None:
            raise _Refusal(self._error(
                request, 403, "Log in to make changes",
                "Changes need a web session: log in through the login page (HTTP Basic or "
                "a token is not enough here).", back_path="/login", back_label="Log in"))
        form = await self._form(request)
        if not csrf_matches(session, form.get("csrf_token")):
            raise _Refusal(self._error(
                request, 403, "Form not accepted",
                "This form was not sent from your current session (missing or wrong CSRF "
                "token). Reload the page and try again."))
        if staff and not principal.sees_everything:
            raise _Refusal(self._forbidden(request))
        return _Post(principal, session, form)

    async def checked_post_or_refusal(self, request: Request) -> _Post | Response:
        """:meth:`_checked_post` for the other page modules: the checked request, or the
        response that refuses it."""
        try:
            return await self._checked_post(request)
        except _Refusal as refusal:
            return refusal.response

    def html_errors(self, handler: Handler) -> Handler:
        """Service errors (the database away, limits) as an HTML page for browsers."""
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                heading = ("The archive is busy or restarting" if exc.status >= 500
                           else "Request not accepted")
                return self._error(request, exc.status, heading, exc.message,
                                   retry_after=exc.retry_after, back_path="/",
                                   back_label="Back to the archive")
        return wrapped

    def _forbidden(self, request: Request) -> Response:
        return self._error(request, 403, "Staff only",
                           "This page is for archive staff. Your account has no staff role.")

    # --- login and logout ----------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._login_post(request)
        return self._login_form(request)

    def _login_form(self, request: Request, *, status: int = 200, error: str | None = None,
                    email: str = "", next_path: str | None = None) -> Response:
        root = self._root(services(request))
        token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not _TOKEN_SHAPE.match(token):
            token = secrets.token_urlsafe(32)
        if next_path is None:
            next_path = forms.safe_next(request.query_params.get("next"), root)
        response = self._page(request, "login.html", status, login_csrf=token, email=email,
                              next=next_path, error=error)
        self._set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response

    async def _login_post(self, request: Request) -> Response:
        ctx = services(request)
        try:
            form = await self._form(request)
        except _Refusal as refusal:
            return refusal.response
        cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        submitted = form.get("csrf_token", "")
        if not (cookie_token and submitted
                and hmac.compare_digest(cookie_token.encode(), submitted.encode())):
            return self._error(request, 403, "Form not accepted",
                               "The login form expired or was not sent from this site. Reload "
                               "the login page and log in again.",
                               back_path="/login", back_label="Back to the login page")
        next_path = forms.safe_next(form.get("next"), self._root(ctx))
        email, password = forms.field(form, "email"), form.get("password") or ""
        if not email or not password:
            return self._login_form(request, status=400, email=email, next_path=next_path,
                                    error="Give your email and password.")
        address = client_address(request.scope)
        outcome = await self._db(request, lambda pool: accounts.login(
            pool, email, password, address=address,
            user_agent=request.headers.get("user-agent", ""),
            previous_cookie=request.cookies.get(COOKIE_NAME), policy=ctx.identity.policy,
            session_lifetime_s=ctx.settings.auth.session_lifetime_s))
        if outcome.throttled:
            return self._error(
                request, 429, "Too many failed logins",
                "Logins for this account or from your address are paused after repeated "
                "failures.", retry_after=outcome.retry_after_seconds,
                back_path="/login", back_label="Back to the login page")
        if outcome.cookie is None:
            return self._login_form(request, status=400, email=email, next_path=next_path,
                                    error="Wrong email or password.")
        response = RedirectResponse(next_path, status_code=303, headers=dict(SECURITY_HEADERS))
        self._set_cookie(request, response, COOKIE_NAME, outcome.cookie,
                         max_age=ctx.settings.auth.session_lifetime_s)
        self._clear_cookie(request, response, LOGIN_CSRF_COOKIE)
        return response

    async def logout(self, request: Request) -> Response:
        session = _session(request)
        if session is None:  # nothing to end; a stale cookie is dropped on the way
            return self._redirect(request, "/login")
        form = await self._form(request)
        if not csrf_matches(session, form.get("csrf_token")):
            return self._error(request, 403, "Form not accepted",
                               "The logout form was not sent from your current session. "
                               "Reload the page and try again.")
        cookie = request.cookies.get(COOKIE_NAME, "")
        address = client_address(request.scope)
        await self._db(request, lambda pool: accounts.logout(pool, cookie, address))
        response = self._redirect(request, "/login?done=logged_out")
        self._clear_cookie(request, response, COOKIE_NAME)
        return response

    # --- the account page ----------------------------------------------------------

    async def home(self, request: Request) -> Response:
        """The landing page: the service URLs and the TAP examples."""
        ctx = services(request)
        return self._page(request, "home.html", base_url=ctx.base_url, examples=EXAMPLES)

    async def account(self, request: Request) -> Response:
        principal = _principal(request)
        if not principal.is_authenticated:
            return self._to_login(request)
        return await self._account_page(request, principal)

    async def _account_page(self, request: Request, principal: Principal, *,
                            status: int = 200, **values: Any) -> Response:
        view = await self._db(request, lambda pool: accounts.account_view(pool, principal))
        return self._page(request, "account.html", status, view=view,
                          method_label=METHOD_LABELS.get(principal.auth_method,
                                                         principal.auth_method),
                          **values)

    async def create_token(self, request: Request) -> Response:
        try:
            post = await self._checked_post(request)
            token_request = forms.token_request(post.form, accounts.utc_today())
            clear, info = await self._db(request, lambda pool: accounts.create_token(
                pool, post.principal, token_request))
        except _Refusal as refusal:
            return refusal.response
        except (forms.FormError, accounts.ActionRefused) as exc:
            return await self._account_page(request, _principal(request),
                                            status=_status(exc), error=str(exc))
        return await self._account_page(request, post.principal, status=201,
                                        new_token=clear, new_token_info=info)

    async def revoke_token(self, request: Request) -> Response:
        try:
            post = await self._checked_post(request)
            prefix = forms.field(post.form, "prefix")
            await self._db(request, lambda pool: accounts.revoke_token(
                pool, post.principal, prefix))
        except _Refusal as refusal:
            return refusal.response
        except accounts.ActionRefused as exc:
            return await self._account_page(request, _principal(request),
                                            status=exc.status, error=str(exc))
        return self._redirect(request, "/account?done=token_revoked")

    # --- the admin page ------------------------------------------------------------

    async def admin(self, request: Request) -> Response:
        principal = _principal(request)
        if not principal.is_authenticated:
            return self._to_login(request)
        if not principal.sees_everything:
            return self._forbidden(request)
        return await self._admin_page(request)

    async def _admin_page(self, request: Request, *, status: int = 200,
                          error: str | None = None) -> Response:
        all_grants = request.query_params.get("grants") == "all"
        view = await self._db(request,
                              lambda pool: accounts.admin_view(pool, all_grants=all_grants))
        return self._page(request, "admin.html", status, view=view, all_grants=all_grants,
                          instrument_dirs=self.instrument_dirs, error=error)

    async def _admin_change(self, request: Request,
                            change: Callable[[Pool, _Post], str]) -> Response:
        """The common path of every admin form: check, change, redirect or explain.

        ``change`` runs in a worker thread and returns the key of the notice to show.
        """
        try:
            post = await self._checked_post(request, staff=True)
            done = await self._db(request, lambda pool: change(pool, post))
        except _Refusal as refusal:
            return refusal.response
        except (forms.FormError, accounts.ActionRefused) as exc:
            return await self._admin_page(request, status=_status(exc), error=str(exc))
        return self._redirect(request, f"/admin?done={done}")

    async def add_user(self, request: Request) -> Response:
        def change(pool: Pool, post: _Post) -> str:
            accounts.add_user(pool, post.principal, forms.user_request(post.form))
            return "user_added"

        return await self._admin_change(request, change)

    async def set_active(self, request: Request) -> Response:
        def change(pool: Pool, post: _Post) -> str:
            active = forms.field(post.form, "active") == "1"
            accounts.set_active(pool, post.principal, forms.field(post.form, "login"), active)
            return "user_enabled" if active else "user_disabled"

        return await self._admin_change(request, change)

    async def create_grant(self, request: Request) -> Response:
        def change(pool: Pool, post: _Post) -> str:
            accounts.create_grant(pool, post.principal, forms.grant_request(
                post.form, accounts.utc_today(), self.instrument_dirs))
            return "grant_created"

        return await self._admin_change(request, change)

    async def revoke_grant(self, request: Request) -> Response:
        def change(pool: Pool, post: _Post) -> str:
            accounts.revoke_grant(pool, post.principal, forms.grant_id(post.form))
            return "grant_revoked"

        return await self._admin_change(request, change)

    async def style(self, request: Request) -> Response:
        return Response(self.css, media_type="text/css",
                        headers={"Cache-Control": "public, max-age=3600"})

    async def search_script(self, request: Request) -> Response:
        return Response(self.script, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})


def _principal(request: Request) -> Principal:
    principal = request.scope.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else ANONYMOUS


def _session(request: Request) -> Session | None:
    session = request.scope.get(SESSION_KEY)
    return session if isinstance(session, Session) else None


def _status(exc: Exception) -> int:
    return exc.status if isinstance(exc, accounts.ActionRefused) else 400


def web_routes(instrument_dirs: tuple[str, ...]) -> list[BaseRoute]:
    """The identity pages; mount them next to the VO endpoints in ``create_app``."""
    pages = WebPages(environment(), stylesheet(), instrument_dirs,
                     static_file("search.js"))
    archive = ArchivePages(pages)
    adql = AdqlPages(pages)

    def page(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, pages.html_errors(handler), methods=methods)

    return [
        page("/", pages.home, ["GET"]),
        page("/login", pages.login, ["GET", "POST"]),
        page("/logout", pages.logout, ["POST"]),
        page("/account", pages.account, ["GET"]),
        page("/account/tokens", pages.create_token, ["POST"]),
        page("/account/tokens/revoke", pages.revoke_token, ["POST"]),
        page("/admin", pages.admin, ["GET"]),
        page("/admin/users", pages.add_user, ["POST"]),
        page("/admin/users/active", pages.set_active, ["POST"]),
        page("/admin/grants", pages.create_grant, ["POST"]),
        page("/admin/grants/revoke", pages.revoke_grant, ["POST"]),
        page("/search", archive.search, ["GET"]),
        page("/dataset", archive.dataset, ["GET"]),
        page("/nights", archive.nights, ["GET"]),
        page("/adql", adql.page, ["GET"]),
        page("/adql/jobs", adql.submit, ["POST"]),
        page("/adql/jobs/delete", adql.delete, ["POST"]),
        Route("/web/style.css", pages.style, methods=["GET"]),
        Route("/web/search.js", pages.search_script, methods=["GET"]),
    ]

"""``users sync|add|disable|list`` and ``tokens create|list|revoke``."""

from __future__ import annotations

import argparse
import getpass
from typing import Any

import psycopg2

from auth import tokens, users
from vo_service.database import setup
from vo_service.settings import Settings


def _owner(settings: Settings) -> Any:
    return psycopg2.connect(setup.database_target(settings).owner_dsn)


def sync_users(settings: Settings) -> int:
    target = setup.database_target(settings)
    if not target.schedule_dsn:
        print("users sync: no scheduling database configured ([schedule] dsn)")
        return 2
    conn = _owner(settings)
    try:
        report = users.sync_users(conn, target.schedule_dsn, settings.schedule.user_sync_query)
    finally:
        conn.close()
    print(f"users sync: {report.seen} observers in the schedule; added {len(report.added)}, "
          f"updated {len(report.updated)}, disabled {len(report.disabled)}, re-enabled "
          f"{len(report.reenabled)}, unchanged {report.unchanged}")
    for conflict in report.conflicts:
        print(f"  skipped: {conflict}")
    return 0


def _sync(settings: Settings, args: argparse.Namespace) -> int:
    return sync_users(settings)


def _add(settings: Settings, args: argparse.Namespace) -> int:
    password = args.password or getpass.getpass(f"password for {args.login}: ")
    conn = _owner(settings)
    try:
        user = users.add_user(conn, args.login, password, first_name=args.first_name or "",
                              last_name=args.last_name or "", is_staff=args.staff or args.admin,
                              is_admin=args.admin)
    except users.UserError as exc:
        print(f"users add: {exc}")
        return 2
    finally:
        conn.close()
    print(f"added {user.login} (user id {user.user_id}{', staff' if user.is_staff else ''}"
          f"{', admin' if user.is_admin else ''})")
    return 0


def _disable(settings: Settings, args: argparse.Namespace) -> int:
    conn = _owner(settings)
    try:
        users.disable_user(conn, args.login)
    except users.UserError as exc:
        print(f"users disable: {exc}")
        return 2
    finally:
        conn.close()
    print(f"disabled {args.login}")
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    conn = _owner(settings)
    try:
        for user in users.list_users(conn):
            roles = ",".join(r for r, on in (("staff", user.is_staff), ("admin", user.is_admin),
                                             ("local", user.is_local)) if on)
            state = "active" if user.is_active else f"disabled ({user.disabled_reason})"
            print(f"{user.user_id:6d}  {user.login:40s} {user.display_name:30s} {roles:18s} "
                  f"{state}")
    finally:
        conn.close()
    return 0


def _token_create(settings: Settings, args: argparse.Namespace) -> int:
    conn = _owner(settings)
    try:
        user = users.get_user(conn, login=args.login)
        if user is None:
            print(f"tokens create: no user {args.login}")
            return 2
        token, _info = tokens.create_token(conn, user.user_id, label=args.label)
    finally:
        conn.close()
    print(token)
    return 0


def _token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    conn = _owner(settings)
    try:
        revoked = tokens.revoke_token(conn, args.prefix)
    finally:
        conn.close()
    print(f"revoked {args.prefix}" if revoked else f"no live token {args.prefix}")
    return 0 if revoked else 1


def register(commands: Any) -> None:
    group = commands.add_parser("users", help="accounts: sync from the schedule, add, "
                                "disable, list")
    sub = group.add_subparsers(dest="users_command", required=True)
    sub.add_parser("sync", help="copy observers from the scheduling database").set_defaults(
        handler=_sync)
    add = sub.add_parser("add", help="create a local (staff/admin) account")
    add.add_argument("login")
    add.add_argument("--password", help="default: asked on the terminal")
    add.add_argument("--first-name")
    add.add_argument("--last-name")
    add.add_argument("--staff", action="store_true")
    add.add_argument("--admin", action="store_true")
    add.set_defaults(handler=_add)
    disable = sub.add_parser("disable", help="disable an account")
    disable.add_argument("login")
    disable.set_defaults(handler=_disable)
    sub.add_parser("list", help="list accounts").set_defaults(handler=_list)

    token_group = commands.add_parser("tokens", help="personal bearer tokens for VO clients")
    token_sub = token_group.add_subparsers(dest="tokens_command", required=True)
    create = token_sub.add_parser("create", help="create a token for a user (printed once)")
    create.add_argument("login")
    create.add_argument("--label", default="cli")
    create.set_defaults(handler=_token_create)
    revoke = token_sub.add_parser("revoke", help="revoke a token by its prefix")
    revoke.add_argument("prefix")
    revoke.set_defaults(handler=_token_revoke)

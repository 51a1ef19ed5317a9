"""``registry refresh``: recompute the coverage and publish the records at once.

The server does the same every ``registry.refresh_interval_s`` seconds when a change
of the data asked for it; ``lick-archive ingest`` runs it when it ends, so that the
coverage follows a bulk ingest without waiting.
"""

from __future__ import annotations

import argparse
from typing import Any

from vo_service.database import setup
from vo_service.database.pool import Pool
from vo_service.services.registry import RefreshResult, RegistryPublisher, service_documents
from vo_service.services.registry_store import RegistryStore
from vo_service.services.tap import IdentitySecret
from vo_service.settings import Settings


def refresh_registry(settings: Settings, *, force: bool = True) -> RefreshResult:
    """One refresh on pools of its own (one connection per role, closed after)."""
    target = setup.database_target(settings)
    owner = Pool("registry-cli", target.owner_dsn, 1)
    query = Pool("coverage-cli", target.query_dsn, 1)
    owner.open()
    query.open()
    try:
        secret = IdentitySecret(owner)
        publisher = RegistryPublisher(settings, RegistryStore(owner), query, secret.get,
                                      service_documents(settings))
        return publisher.refresh(force=force)
    finally:
        query.close()
        owner.close()


def _refresh(settings: Settings, args: argparse.Namespace) -> int:
    result = refresh_registry(settings, force=True)
    for coverage in result.coverages:
        print(f"coverage {coverage.collection}: {coverage.datasets} public datasets")
    print(f"registry: {len(result.changed)} record(s) published anew"
          + (f": {', '.join(result.changed)}" if result.changed else ""))
    return 0


def register(commands: Any) -> None:
    registry = commands.add_parser("registry", help="the publishing registry (docs/registry.md)")
    actions = registry.add_subparsers(dest="registry_command", required=True)
    actions.add_parser(
        "refresh", help="recompute the coverage of the public data and publish the records"
    ).set_defaults(handler=_refresh)

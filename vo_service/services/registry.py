"""Keeping the published records and the coverage true: the refresher.

One refresh: if a change of ``ivoa.obscore`` marked the coverage stale (ingest, an
access recompute, housekeeping marking newly public rows; triggers of migration
``0009_registry``), recompute it from the public data and store it; then build every
record from the configuration, the services' own documents and the stored coverage,
and publish what changed.  The server runs it at start-up and every
``registry.refresh_interval_s`` seconds in a background thread; ``lick-archive
ingest`` and ``lick-archive registry refresh`` run it at once.

The service documents are built by the same functions that serve
``/tap/capabilities``, ``/sia/capabilities`` and ``/tap/tables``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tap_schema import vosi
from vo_service.database.pool import Pool
from vo_service.errors import TransientFault
from vo_service.services.capabilities import tap_capabilities
from vo_service.services.coverage import Coverage, compute_coverages
from vo_service.services.registry_records import RecordBuilder, ServiceDocuments
from vo_service.services.registry_store import RegistryStore
from vo_service.services.sia_documents import sia_capabilities
from vo_service.settings import Settings

log = logging.getLogger("lick_archive.registry")


def service_documents(settings: Settings) -> ServiceDocuments:
    base_url = settings.service.base_url.rstrip("/")
    return ServiceDocuments(tap_capabilities(settings), sia_capabilities(f"{base_url}/sia"),
                            vosi.tableset(detail=True))


@dataclass(frozen=True)
class RefreshResult:
    recomputed: bool
    coverages: list[Coverage]
    changed: list[str]


class RegistryPublisher:
    """Coverage (query role, as an anonymous client) and records (owner role)."""

    def __init__(self, settings: Settings, store: RegistryStore, query_pool: Pool,
                 secret: Callable[[], bytes], documents: ServiceDocuments) -> None:
        self.settings = settings
        self.store = store
        self.query_pool = query_pool
        self.secret = secret
        self.documents = documents

    def refresh(self, *, force: bool = False) -> RefreshResult:
        recomputed = False
        if self.store.claim_stale() or force:
            try:
                coverages = compute_coverages(self.query_pool, self.secret(),
                                              self.settings.registry.moc_order)
                self.store.save_coverages(coverages)
            except BaseException:
                self.store.mark_stale()
                raise
            recomputed = True
        coverages = self.store.coverages()
        built = RecordBuilder(self.settings, self.documents, coverages).records()
        changed = self.store.publish(built)
        if changed:
            log.info("registry records published: %s", ", ".join(changed))
        return RefreshResult(recomputed, coverages, changed)


class RegistryRefresher:
    """A daemon thread running :meth:`RegistryPublisher.refresh` every ``interval``."""

    def __init__(self, publisher: RegistryPublisher, interval: float) -> None:
        self.publisher = publisher
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registry", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            try:
                self.publisher.refresh()
            except TransientFault as exc:  # the database is away: say so, briefly
                log.warning("registry refresh: %s; will retry", exc.message)
            except Exception:  # nothing may end the thread
                log.exception("registry refresh failed; will retry")
            if self._stop.wait(self.interval):
                return

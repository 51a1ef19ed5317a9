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

import io
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tap_schema import vosi
from vo_service.database.pool import Pool
from vo_service.errors import TransientFault
from vo_service.services.capabilities import tap_capabilities
from vo_service.services.coverage import Coverage, compute_coverages, union
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
        self._published_for: datetime | None = None

    def refresh(self, *, force: bool = False) -> RefreshResult:
        """Recompute a stale coverage; publish when the coverage is new to this process.

        The records depend on the configuration and the service documents (fixed for
        a process) and on the stored coverage: a round in which neither this process
        nor another one computed a coverage builds nothing (a large MOC costs a
        noticeable fraction of a second to read)."""
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
        stamp = self.store.computed_at()
        if not force and self._published_for is not None and stamp == self._published_for:
            return RefreshResult(recomputed, [], [])
        coverages = self.store.coverages()
        built = RecordBuilder(self.settings, self.documents, coverages).records()
        changed = self.store.publish(built)
        self._published_for = stamp
        if changed:
            log.info("registry records published: %s", ", ".join(changed))
        return RefreshResult(recomputed, coverages, changed)


class CoverageFiles:
    """The MOC files ``/coverage`` serves, made once per computed coverage.

    A MOC of a large archive is megabytes of text: each request would read, parse and
    serialize it again.  The files are kept per (collection, format) until the stored
    coverage changes (one cheap read of its time stamp per request)."""

    def __init__(self, store: RegistryStore, order: int) -> None:
        self.store = store
        self.order = order
        self._lock = threading.Lock()
        self._stamp: datetime | None = None
        self._coverages: dict[str, Coverage] | None = None
        self._files: dict[tuple[str, str], bytes] = {}

    def collections(self) -> list[str]:
        return sorted(name for name in self._current() if name)

    def get(self, collection: str, media_type: str) -> bytes | None:
        """The MOC of ``collection`` (``""``: the whole archive) as ``media_type``;
        None when no collection of that name has public data."""
        coverages = self._current()
        with self._lock:
            cached = self._files.get((collection, media_type))
        if cached is not None:
            return cached
        coverage = (union([c for c in coverages.values()], self.order) if collection == ""
                    else coverages.get(collection))
        if coverage is None:
            return None
        made = moc_file(coverage, media_type)
        with self._lock:
            if len(self._files) < 3 * (len(coverages) + 1):
                self._files[(collection, media_type)] = made
        return made

    def _current(self) -> dict[str, Coverage]:
        stamp = self.store.computed_at()
        with self._lock:
            if stamp == self._stamp and self._coverages is not None:
                return self._coverages
        coverages = {c.collection: c for c in self.store.coverages()}
        with self._lock:
            self._stamp, self._coverages, self._files = stamp, coverages, {}
        return coverages


def moc_file(coverage: Coverage, media_type: str) -> bytes:
    """A coverage's MOC as MOC 2.0 FITS, mocpy's JSON or ASCII."""
    moc = coverage.moc_object()
    if media_type == "application/json":
        return json.dumps(moc.serialize(format="json")).encode()
    if media_type == "text/plain":
        return str(moc.to_string(format="ascii")).encode() + b"\n"
    buffer = io.BytesIO()
    moc.serialize(format="fits").writeto(buffer)
    return buffer.getvalue()


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

"""The composition of the running service: pools, services and background work.

:class:`Factory` is built from the settings with everything closed; the app's
lifespan calls :meth:`Factory.open`, which opens the pools, starts the background
threads (phase-change listener, job runner, housekeeping) and returns the
:class:`Services` the HTTP handlers use; :meth:`Factory.close` stops it all.  Each
service receives only the objects it uses (a pool, its settings section, the
identity secret), never the whole configuration.  The pools, one per purpose, are
described in docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio

from vo_service.database.pool import Pool
from vo_service.database.replicas import Replicas
from vo_service.database.setup import DatabaseTarget, database_target
from vo_service.metrics import Metrics
from vo_service.services.datalink import DataLinkService, LinkUrls
from vo_service.services.datasets import DatasetLookup
from vo_service.services.downloads import Downloads
from vo_service.services.health import Health
from vo_service.services.housekeeping import Housekeeping
from vo_service.services.identity import IdentityService
from vo_service.services.monitoring import Monitoring
from vo_service.services.oai import OaiService
from vo_service.services.previews import PreviewCache
from vo_service.services.registry import (
    CoverageFiles,
    RegistryPublisher,
    RegistryRefresher,
    service_documents,
)
from vo_service.services.registry_records import RecordBuilder
from vo_service.services.registry_store import RegistryStore
from vo_service.services.sia import SiaService
from vo_service.services.soda import SodaService
from vo_service.services.tap import IdentitySecret, QueryLimits, TapService
from vo_service.services.tap_async import make_executor
from vo_service.services.tarball import RateLimiter
from vo_service.settings import Settings
from vo_service.uws.events import PhaseEvents
from vo_service.uws.runner import JobRunner
from vo_service.uws.service import UwsService
from vo_service.uws.store import JobStore

#: Threads that fetch UPLOADs given by URL (network I/O, no database connection).
FETCH_THREADS = 4
#: Threads that send cancel requests for queries whose client went away.
CANCEL_THREADS = 2


@dataclass(frozen=True)
class Pools:
    """One pool per purpose (docs/architecture.md); all open and close together."""

    query: Pool       # sync TAP queries, query role
    probe: Pool       # VOSI availability, query role
    identity: Pool    # credentials and sessions, owner role
    uws: Pool         # UWS requests, owner role
    pages: Pool       # the web pages, owner role
    datasets: Pool    # datasets by identifier (DataLink, downloads, cutouts), query role
    jobs: Pool        # async job queries (runner threads), query role
    background: Pool  # runner bookkeeping and housekeeping, owner role
    registry: Pool    # /oai and /coverage requests, publishing, owner role
    coverage: Pool    # computing the coverage as an anonymous client, query role (primary)
    monitor: Pool     # the database figures of /metrics, owner role
    #: queries with uploads, on the primary, when the query pools read from standbys
    #: (sync requests, and async jobs: each its own)
    uploads: Pool | None = None
    job_uploads: Pool | None = None
    schedule: Pool | None = None  # the scheduling database ("my nights"), when configured

    def all(self) -> tuple[Pool, ...]:
        pools = (self.query, self.probe, self.identity, self.uws, self.pages, self.datasets,
                 self.jobs, self.background, self.registry, self.coverage, self.monitor,
                 self.uploads, self.job_uploads, self.schedule)
        return tuple(pool for pool in pools if pool is not None)


@dataclass(frozen=True)
class Services:
    """What the HTTP handlers use (``request.app.state.services``)."""

    settings: Settings
    pools: Pools
    identity: IdentityService
    tap: TapService
    health: Health
    uws: UwsService
    events: PhaseEvents
    datasets: DatasetLookup
    sia: SiaService
    capabilities: bytes
    sia_capabilities: bytes
    fetch_limiter: anyio.CapacityLimiter
    cancel_limiter: anyio.CapacityLimiter
    #: threads streaming files and tarballs (no connection held)
    file_limiter: anyio.CapacityLimiter
    #: threads for CPU work on data: previews, cutouts
    compute_limiter: anyio.CapacityLimiter
    datalink: DataLinkService
    downloads: Downloads
    previews: PreviewCache
    #: tarball requests per user
    tar_rate: RateLimiter
    #: SODA cutouts (lookups on the datasets pool, cutting on compute_limiter)
    soda: SodaService
    #: the OAI-PMH publishing registry and the stored coverage (registry pool)
    oai: OaiService
    registry: RegistryStore
    #: the MOC files of /coverage, kept until the coverage changes
    coverage_files: CoverageFiles
    #: Prometheus metrics (``/metrics``)
    metrics: Metrics
    monitoring: Monitoring

    @property
    def base_url(self) -> str:
        return self.settings.service.base_url.rstrip("/")


def build_pools(settings: Settings, target: DatabaseTarget,
                replicas: Replicas | None = None, metrics: Metrics | None = None) -> Pools:
    """The pools; with ``replicas``, the read-only purposes read from standbys."""
    db = settings.database
    wait = db.admission_wait_s
    owner, query = target.owner_dsn, target.query_dsn
    runner_threads = settings.uws.runner_threads

    def pool(name: str, dsn: str, size: int, admission_wait_s: float = wait,
             replicas: Replicas | None = None, session_dsn: str | None = None) -> Pool:
        return Pool(name, dsn, size, admission_wait_s=admission_wait_s, replicas=replicas,
                    session_dsn=session_dsn, metrics=metrics)

    return Pools(
        query=pool("query", query, db.query_pool_size, replicas=replicas),
        probe=pool("probe", query, 2, admission_wait_s=5.0, replicas=replicas),
        identity=pool("identity", owner, db.identity_pool_size),
        uws=pool("uws", owner, db.uws_pool_size),
        pages=pool("pages", owner, db.pages_pool_size),
        datasets=pool("datasets", query, db.datasets_pool_size, replicas=replicas),
        jobs=pool("jobs", query, runner_threads, replicas=replicas),
        # runner threads, its monitor and sweeper, housekeeping, the registry refresher
        # and the secret
        background=pool("background", owner, runner_threads + 4,
                        session_dsn=target.session_dsn),
        registry=pool("registry", owner, settings.registry.pool_size),
        # on the primary: the coverage follows the data as soon as they change
        coverage=pool("coverage", query, 1),
        monitor=pool("monitor", owner, 1, admission_wait_s=5.0),
        uploads=None if replicas is None else pool(
            "uploads", query, max(2, db.query_pool_size // 4)),
        job_uploads=None if replicas is None else pool("job-uploads", query, runner_threads),
        # the observatory's database: two connections at most, opened on first use
        schedule=pool("schedule", target.schedule_dsn, 2) if target.schedule_dsn else None,
    )


class Factory:
    """Builds everything closed; :meth:`open` starts it, :meth:`close` stops it."""

    def __init__(self, settings: Settings, target: DatabaseTarget | None = None, *,
                 archive_roots: Sequence[Path] = ()) -> None:
        self.settings = settings
        self.archive_roots = tuple(archive_roots)
        self.target = target or database_target(settings)
        db = settings.database
        self.replicas = (Replicas(self.target.owner_dsn, db.replica_urls, db.replica_check_s)
                         if db.replica_urls else None)
        self.metrics = Metrics()
        self.pools = build_pools(settings, self.target, self.replicas, self.metrics)
        self.events = PhaseEvents(self.target.session_dsn)
        self._runner: JobRunner | None = None
        self._housekeeping: Housekeeping | None = None
        self._registry: RegistryRefresher | None = None

    def _tap(self, pool: Pool, secret: IdentitySecret, *, asynchronous: bool) -> TapService:
        db = self.settings.database
        if asynchronous:
            limits = QueryLimits(db.async_statement_timeout_ms, db.async_work_mem,
                                 db.async_temp_file_limit if self.settings.embedded else None)
        else:
            limits = QueryLimits(db.sync_statement_timeout_ms, db.sync_work_mem)
        links_url = f"{self.settings.service.base_url.rstrip('/')}/datalink/links"
        uploads = self.pools.job_uploads if asynchronous else self.pools.uploads
        return TapService(pool, self.settings.tap, limits, secret, links_url, uploads)

    def open(self) -> Services:
        settings = self.settings
        if self.replicas is not None:
            self.replicas.start()
        for pool in self.pools.all():
            pool.open()
        secret = IdentitySecret(self.pools.background)
        jobs_dir = settings.data_dir / "jobs"
        self.events.start()
        self._runner = JobRunner(
            JobStore(self.pools.background),
            make_executor(self._tap(self.pools.jobs, secret, asynchronous=True)),
            jobs_dir,
            bytes_per_owner=settings.uws.max_result_bytes_per_owner,
            bytes_total=settings.uws.max_result_bytes_total,
            pending_lifetime_s=settings.uws.pending_lifetime_s,
            threads=settings.uws.runner_threads, events=self.events,
            sweep_interval=settings.uws.sweep_interval_s,
            on_finished=self.metrics.job_finished)
        self._runner.start()
        self._housekeeping = Housekeeping(self.pools.background, settings.auth,
                                          settings.uws.sweep_interval_s)
        self._housekeeping.start()
        documents = service_documents(settings)
        registry = RegistryStore(self.pools.registry)
        self._registry = RegistryRefresher(
            RegistryPublisher(settings, RegistryStore(self.pools.background),
                              self.pools.coverage, secret.get, documents),
            settings.registry.refresh_interval_s)
        self._registry.start()
        datasets = DatasetLookup(self.pools.datasets, secret, self.archive_roots)
        downloads = settings.downloads
        tap = self._tap(self.pools.query, secret, asynchronous=False)
        base_url = settings.service.base_url.rstrip("/")
        return Services(
            settings=settings,
            pools=self.pools,
            identity=IdentityService(self.pools.identity, settings.auth),
            tap=tap,
            health=Health(self.pools.probe, datetime.now(UTC)),
            uws=UwsService(JobStore(self.pools.uws), settings.uws, jobs_dir),
            events=self.events,
            datasets=datasets,
            sia=SiaService(tap, base_url),
            capabilities=documents.tap_capabilities,
            sia_capabilities=documents.sia_capabilities,
            fetch_limiter=anyio.CapacityLimiter(FETCH_THREADS),
            cancel_limiter=anyio.CapacityLimiter(CANCEL_THREADS),
            file_limiter=anyio.CapacityLimiter(settings.downloads.threads),
            compute_limiter=anyio.CapacityLimiter(settings.downloads.compute_threads),
            datalink=DataLinkService(datasets, LinkUrls(settings.service.base_url.rstrip("/"))),
            downloads=Downloads(datasets),
            previews=PreviewCache(settings.data_dir / "previews", downloads.preview_cache_bytes),
            tar_rate=RateLimiter(downloads.tar_burst, downloads.tar_per_hour,
                                 downloads.rate_limit_clients),
            soda=SodaService(datasets, settings.downloads, settings.service.base_url,
                             settings.service.short_name),
            oai=OaiService(registry, base_url, f"{settings.service.title} publishing registry",
                           settings.service.contact_email, settings.registry.page_size,
                           secret.get, RecordBuilder.registry_identifier(settings)),
            registry=registry,
            coverage_files=CoverageFiles(registry, settings.registry.moc_order),
            metrics=self.metrics,
            monitoring=Monitoring(self.pools.monitor, self.metrics,
                                  settings.service.metrics_clients),
        )

    def close(self) -> None:
        if self._registry is not None:
            self._registry.stop()
        if self._housekeeping is not None:
            self._housekeeping.stop()
        if self._runner is not None:
            self._runner.stop()
        self.events.stop()
        if self.replicas is not None:
            self.replicas.stop()
        for pool in self.pools.all():
            pool.close()

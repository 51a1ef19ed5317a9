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
from vo_service.database.setup import DatabaseTarget, database_target
from vo_service.metrics import Metrics
from vo_service.services.capabilities import tap_capabilities
from vo_service.services.datalink import DataLinkService, LinkUrls
from vo_service.services.datasets import DatasetLookup
from vo_service.services.downloads import Downloads
from vo_service.services.health import Health
from vo_service.services.housekeeping import Housekeeping
from vo_service.services.identity import IdentityService
from vo_service.services.monitoring import Monitoring
from vo_service.services.previews import PreviewCache
from vo_service.services.sia import SiaService
from vo_service.services.sia_documents import sia_capabilities
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
    monitor: Pool     # the database figures of /metrics, owner role

    def all(self) -> tuple[Pool, ...]:
        return (self.query, self.probe, self.identity, self.uws, self.pages, self.datasets,
                self.jobs, self.background, self.monitor)


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
    #: Prometheus metrics (``/metrics``)
    metrics: Metrics
    monitoring: Monitoring

    @property
    def base_url(self) -> str:
        return self.settings.service.base_url.rstrip("/")


def build_pools(settings: Settings, target: DatabaseTarget, metrics: Metrics | None = None
                ) -> Pools:
    db = settings.database
    wait = db.admission_wait_s
    # PostgreSQL ends the query of a client that died (a killed server) within this.
    check = {"client_connection_check_interval": f"{db.client_check_interval_ms}ms"}
    owner, query = target.owner_dsn, target.query_dsn
    runner_threads = settings.uws.runner_threads

    def pool(name: str, dsn: str, size: int, options: dict[str, str] | None = None,
             admission_wait_s: float = wait) -> Pool:
        return Pool(name, dsn, size, admission_wait_s=admission_wait_s, options=options,
                    metrics=metrics)

    return Pools(
        query=pool("query", query, db.query_pool_size, options=check),
        probe=pool("probe", query, 2, admission_wait_s=5.0),
        identity=pool("identity", owner, db.identity_pool_size),
        uws=pool("uws", owner, db.uws_pool_size),
        pages=pool("pages", owner, db.pages_pool_size),
        datasets=pool("datasets", query, db.datasets_pool_size, options=check),
        jobs=pool("jobs", query, runner_threads, options=check),
        # runner threads, its monitor and sweeper, housekeeping and the secret
        background=pool("background", owner, runner_threads + 3),
        monitor=pool("monitor", owner, 1, admission_wait_s=5.0),
    )


class Factory:
    """Builds everything closed; :meth:`open` starts it, :meth:`close` stops it."""

    def __init__(self, settings: Settings, target: DatabaseTarget | None = None, *,
                 archive_roots: Sequence[Path] = ()) -> None:
        self.settings = settings
        self.archive_roots = tuple(archive_roots)
        self.target = target or database_target(settings)
        self.metrics = Metrics()
        self.pools = build_pools(settings, self.target, self.metrics)
        self.events = PhaseEvents(self.target.owner_dsn)
        self._runner: JobRunner | None = None
        self._housekeeping: Housekeeping | None = None

    def _tap(self, pool: Pool, secret: IdentitySecret, *, asynchronous: bool) -> TapService:
        db = self.settings.database
        if asynchronous:
            limits = QueryLimits(db.async_statement_timeout_ms, db.async_work_mem,
                                 db.async_temp_file_limit if self.settings.embedded else None)
        else:
            limits = QueryLimits(db.sync_statement_timeout_ms, db.sync_work_mem)
        links_url = f"{self.settings.service.base_url.rstrip('/')}/datalink/links"
        return TapService(pool, self.settings.tap, limits, secret, links_url)

    def open(self) -> Services:
        settings = self.settings
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
            capabilities=tap_capabilities(settings),
            sia_capabilities=sia_capabilities(f"{base_url}/sia"),
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
            metrics=self.metrics,
            monitoring=Monitoring(self.pools.monitor, self.metrics,
                                  settings.service.metrics_clients),
        )

    def close(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.stop()
        if self._runner is not None:
            self._runner.stop()
        self.events.stop()
        for pool in self.pools.all():
            pool.close()

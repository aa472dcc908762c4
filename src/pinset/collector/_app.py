"""The app factory: ``create_app(settings)`` gives a FastAPI app uvicorn can run."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pinset.collector import _dashboard as dashboard
from pinset.collector._bundles import BundleShelf
from pinset.collector._db import create_engine, migrate
from pinset.collector._ingest import IngestFastPath
from pinset.collector._metrics import Metrics
from pinset.collector._ratelimit import RateLimiter
from pinset.collector._routes import router
from pinset.collector._settings import Settings
from pinset.collector._state import Collector
from pinset.collector._writer import BatchWriter

__all__ = ["app_from_env", "create_app"]


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    """A collector app: migrates the database (unless ``settings.migrate`` is false) and serves.

    ``clock`` gives the receive time in epoch seconds (tests move it). The
    writer thread starts with the app (or on the first report) and commits
    what is queued when the app shuts down.
    """
    settings = settings or Settings.from_env()
    # A missing bundles directory is refused before the database is touched.
    bundles = None if settings.bundles_dir is None else BundleShelf(settings.bundles_dir)
    engine = create_engine(settings.db_url)
    if settings.migrate:
        migrate(engine)
    metrics = Metrics()
    writer = BatchWriter(
        engine,
        batch_size=settings.batch_size,
        queue_size=settings.queue_size,
        on_commit=metrics.count_committed,
    )
    metrics.track_queue(lambda: writer.queue_depth, writer.queue_limit)
    collector = Collector(
        settings=settings,
        engine=engine,
        writer=writer,
        limiter=RateLimiter(settings.rate_per_second, settings.rate_burst),
        metrics=metrics,
        clock=clock,
        bundles=bundles,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        writer.start()
        try:
            yield
        finally:
            writer.stop()
            engine.dispose()

    app = FastAPI(
        title="pinset collector",
        version="1",
        summary="Receives RFC 7469 / TrustKit pin-failure reports and summarises them; "
        "publishes signed pin-set bundles.",
        lifespan=lifespan,
    )
    app.state.collector = collector
    app.include_router(router)
    # The page and its three files, served by name from package data (never a directory).
    app.include_router(dashboard.router)
    app.add_middleware(IngestFastPath, collector=collector)
    return app


def app_from_env() -> FastAPI:
    """An app configured from ``PINSET_COLLECTOR_*`` variables (uvicorn ``--factory`` workers)."""
    return create_app(Settings.from_env())

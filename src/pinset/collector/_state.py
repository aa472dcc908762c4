"""What one running collector holds: settings, engine, writer, rate limiter, metrics, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from pinset.collector._bundles import BundleShelf
from pinset.collector._metrics import Metrics
from pinset.collector._ratelimit import RateLimiter
from pinset.collector._settings import Settings
from pinset.collector._writer import BatchWriter

__all__ = ["Collector"]


@dataclass(slots=True)
class Collector:
    """The per-app state the routes use (``app.state.collector``)."""

    settings: Settings
    engine: sa.Engine
    writer: BatchWriter
    limiter: RateLimiter
    metrics: Metrics
    clock: Callable[[], float]
    bundles: BundleShelf | None = None

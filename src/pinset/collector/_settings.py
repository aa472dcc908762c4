"""The collector's settings: one frozen value the app factory reads."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from pinset.collector._db import DEFAULT_DB_URL
from pinset.collector._writer import DEFAULT_QUEUE_SIZE
from pinset.errors import ConfigError

__all__ = ["TOKEN_ENV", "Settings"]

TOKEN_ENV = "PINSET_COLLECTOR_TOKEN"  # noqa: S105 - a variable name, not a secret


@dataclass(frozen=True, slots=True)
class Settings:
    """How a collector runs.

    ``token`` guards the read side (``None``: every read answers 401).
    ``rate_per_second``/``rate_burst`` size each client address's token bucket
    (``rate_per_second=0`` turns the limit off). ``alert_threshold`` is the number
    of failures per domain in the last hour above which ``/v1/alerts`` lists it;
    ``alert_rate`` the failure rate (0..1, from verdict tallies) at or above which it
    lists a domain that had at least ``alert_min_total`` tallied verdicts in that hour.
    ``bundles_dir``: the directory of signed pin-set bundles ``GET /v1/pins/{app_id}``
    publishes (``None``: none, every app is answered 404).
    ``queue_size`` bounds the reports waiting for their commit; one more is answered
    503 with ``Retry-After`` (load shedding: docs/security.md).
    """

    db_url: str = DEFAULT_DB_URL
    token: str | None = None
    alert_threshold: int = 100
    alert_rate: float = 0.05
    alert_min_total: int = 100
    max_body: int = 64 * 1024
    rate_per_second: float = 20.0
    rate_burst: int = 200
    batch_size: int = 500
    queue_size: int = DEFAULT_QUEUE_SIZE
    migrate: bool = True
    bundles_dir: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.alert_rate <= 1.0:
            raise ConfigError(
                f"the alert rate must be over 0 and at most 1, not {self.alert_rate}",
                key="--alert-rate",
                hint="a share of verdicts: 0.05 alerts at 5 % failures",
            )
        if self.alert_min_total < 1:
            raise ConfigError(
                f"the alert minimum must be at least 1, not {self.alert_min_total}",
                key="--alert-min-total",
            )
        if self.queue_size < 1:
            raise ConfigError(
                f"the write queue must hold at least 1 report, not {self.queue_size}",
                key="PINSET_COLLECTOR_QUEUE",
            )

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``PINSET_COLLECTOR_*`` variables, then ``overrides`` (``None`` skipped).

        ``PINSET_COLLECTOR_TOKEN``, ``_DB``, ``_ALERT_THRESHOLD``, ``_ALERT_RATE``,
        ``_ALERT_MIN_TOTAL``, ``_RATE``,
        ``_BURST``, ``_BUNDLES``, ``_QUEUE`` and ``_MIGRATE`` (``0`` to skip migrations).
        """
        env = os.environ
        values: dict[str, object] = {}
        if env.get(TOKEN_ENV):
            values["token"] = env[TOKEN_ENV]
        for name, key, kind in _ENV:
            if env.get(name):
                values[key] = kind(env[name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The variables :meth:`from_env` reads back as these settings (for worker processes)."""
        out = {
            name: str(getattr(self, key)) for name, key, _ in _ENV if getattr(self, key) is not None
        }
        out["PINSET_COLLECTOR_MIGRATE"] = "1" if self.migrate else "0"
        if self.token:
            out[TOKEN_ENV] = self.token
        return out


def _flag(text: str) -> bool:
    return text.strip().lower() not in ("0", "false", "no", "")


_ENV: tuple[tuple[str, str, Callable[[str], object]], ...] = (
    ("PINSET_COLLECTOR_DB", "db_url", str),
    ("PINSET_COLLECTOR_ALERT_THRESHOLD", "alert_threshold", int),
    ("PINSET_COLLECTOR_ALERT_RATE", "alert_rate", float),
    ("PINSET_COLLECTOR_ALERT_MIN_TOTAL", "alert_min_total", int),
    ("PINSET_COLLECTOR_RATE", "rate_per_second", float),
    ("PINSET_COLLECTOR_BURST", "rate_burst", int),
    ("PINSET_COLLECTOR_QUEUE", "queue_size", int),
    ("PINSET_COLLECTOR_MIGRATE", "migrate", _flag),
    ("PINSET_COLLECTOR_BUNDLES", "bundles_dir", str),
)

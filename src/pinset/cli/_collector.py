"""``pinset collector serve``: run the pin-failure report collector under uvicorn."""

from __future__ import annotations

import os
import secrets
from dataclasses import replace

import click

from pinset.cli._options import port_option
from pinset.errors import ConfigError
from pinset.status import ExitStatus

__all__ = ["group"]


@click.group("collector")
def group() -> None:
    """Run the pin-failure report collector (needs the 'collector' extra)."""


@group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@port_option(8000, help="Port to listen on (0: any free port).", any_free=True)
@click.option(
    "--db",
    "db_url",
    default=None,
    help="Database URL [default: sqlite:///pinset-collector.db; or postgresql+psycopg://…].",
)
@click.option(
    "--token",
    default=None,
    help="Bearer token of the read side [env PINSET_COLLECTOR_TOKEN; default: a random one].",
)
@click.option(
    "--alert-threshold",
    default=None,
    type=click.IntRange(0),
    help="Failures per domain in the last hour that raise an alert [default: 100].",
)
@click.option(
    "--alert-rate",
    default=None,
    type=click.FloatRange(0, 1, min_open=True),
    help="Failure rate (from verdict tallies) that raises an alert [default: 0.05].",
)
@click.option(
    "--alert-min-total",
    default=None,
    type=click.IntRange(1),
    help="Tallied verdicts per domain in the last hour a rate alert needs [default: 100].",
)
@click.option(
    "--rate-limit",
    default=None,
    type=click.FloatRange(0),
    help="Reports per second per client address, 0 for no limit [default: 20].",
)
@click.option(
    "--rate-burst", default=None, type=click.IntRange(1), help="Bucket size [default: 200]."
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    metavar="ADDRESSES",
    help="Proxies (comma-separated addresses, or '*') whose X-Forwarded-For names the client "
    "[default: none; the peer address is the client].",
)
@click.option(
    "--read-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds a client has to send one request, headers and body.",
)
@click.option(
    "--max-connections",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="Open connections before new requests are answered 503.",
)
@click.option(
    "--bundles",
    "bundles_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Publish the newest signed pin-set bundle per app from this directory "
    "at GET /v1/pins/{app_id} [env PINSET_COLLECTOR_BUNDLES].",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Processes.")
@click.option("--log-level", default="warning", show_default=True)
def serve(
    host: str,
    port: int,
    db_url: str | None,
    token: str | None,
    alert_threshold: int | None,
    alert_rate: float | None,
    alert_min_total: int | None,
    rate_limit: float | None,
    rate_burst: int | None,
    forwarded_allow_ips: str | None,
    read_timeout: float,
    max_connections: int,
    bundles_dir: str | None,
    workers: int,
    log_level: str,
) -> int:
    """Serve POST /v1/report, /v1/tallies and the read API (/v1/summary, /v1/adoption …)."""
    try:
        import uvicorn

        from pinset.collector._app import create_app
        from pinset.collector._bundles import BundleShelf
        from pinset.collector._db import create_engine, migrate
        from pinset.collector._server import ServerLimits, uvicorn_options
        from pinset.collector._settings import TOKEN_ENV, Settings
    except ImportError as exc:
        raise ConfigError(
            f"the collector needs its extra dependencies ({exc.name} is missing)",
            hint="pip install 'pinset[collector]'",
        ) from None
    settings = Settings.from_env(
        db_url=db_url,
        token=token,
        alert_threshold=alert_threshold,
        alert_rate=alert_rate,
        alert_min_total=alert_min_total,
        rate_per_second=rate_limit,
        rate_burst=rate_burst,
        bundles_dir=bundles_dir,
    )
    if not settings.token:
        generated = secrets.token_urlsafe(24)
        settings = replace(settings, token=generated)
        click.echo(f"read-side token (set {TOKEN_ENV} to choose one): {generated}", err=True)
    click.echo(
        f"pinset collector on http://{host}:{port}/v1/report, database {_safe(settings.db_url)}",
        err=True,
    )
    if settings.bundles_dir is not None:
        newest = BundleShelf(settings.bundles_dir).newest()
        listed = ", ".join(f"{app} v{b.version} ({b.path})" for app, b in sorted(newest.items()))
        click.echo(
            f"publishing bundles from {settings.bundles_dir} at /v1/pins/{{app_id}}: "
            + (listed or "none yet"),
            err=True,
        )
    limits = ServerLimits(
        forwarded_allow_ips=forwarded_allow_ips,
        read_timeout=read_timeout,
        max_connections=max_connections,
    )
    server = uvicorn_options(limits)
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, **server)
        return int(ExitStatus.OK)
    # Migrate once here; each worker process reads its settings from the environment.
    engine = create_engine(settings.db_url)
    migrate(engine)
    engine.dispose()
    os.environ.update(replace(settings, migrate=False).to_env())
    uvicorn.run(
        "pinset.collector._app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        **server,
    )
    return int(ExitStatus.OK)


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)

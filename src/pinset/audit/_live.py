"""Fetch the chains of many pinned hosts at once: asyncio, bounded concurrency, per-host timeout.

One TLS handshake per host through :func:`pinset.chain.async_fetch_chain`
with a verifying context built once for the whole run (loading the trust store
is the costly part of a context). When validation succeeds the verified chain
(leaf to trust anchor, so root pins can match) is what the rules see; when it
fails, the chain the server sent. An unreachable host becomes a
:class:`~pinset.audit._model.LiveChain` with ``error`` set; it never stops the
run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pinset.audit._model import LiveChain
from pinset.chain import async_fetch_chain, verifying_context
from pinset.errors import ConfigError, PinsetError
from pinset.hosts import canonical_host

__all__ = ["Endpoint", "async_fetch_chains", "fetch_chains", "parse_endpoint"]

DEFAULT_CONCURRENCY = 64


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Audit ``host`` (the name checked and sent as SNI) by connecting to ``address:port``."""

    host: str
    address: str
    port: int = 443

    @property
    def origin(self) -> str:
        """``address:port`` as shown in findings."""
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{address}:{self.port}"


def parse_endpoint(text: str, *, default_port: int = 443) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` → (host, port); :class:`ConfigError` if bad."""
    value = text.strip()
    port = default_port
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
        port = _port(port_text, text)
    else:
        host = value
    if not host:
        raise ConfigError(f"no host name in {text!r}", key="--host", hint="write HOST or HOST:PORT")
    return host, port


def _port(text: str, whole: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ConfigError(
            f"bad port in {whole!r}", key="--host", hint="a port is a number from 1 to 65535"
        )
    return int(text)


async def _one(
    endpoint: Endpoint,
    semaphore: asyncio.Semaphore,
    context: ssl.SSLContext,
    timeout: float,
) -> LiveChain:
    async with semaphore:
        try:
            fetched = await async_fetch_chain(
                endpoint.address,
                endpoint.port,
                server_name=endpoint.host,
                timeout=timeout,
                context=context,
            )
        except PinsetError as exc:
            return LiveChain(endpoint.host, endpoint.origin, error=exc.message)
        except (OSError, ValueError) as exc:  # e.g. an SNI name ssl refuses
            return LiveChain(endpoint.host, endpoint.origin, error=str(exc) or type(exc).__name__)
    chain = fetched.verified if fetched.verified else fetched.served
    return LiveChain(endpoint.host, endpoint.origin, certificates=tuple(chain))


async def async_fetch_chains(
    endpoints: Sequence[Endpoint],
    *,
    timeout: float = 10.0,
    concurrency: int = DEFAULT_CONCURRENCY,
    cafile: str | os.PathLike[str] | None = None,
    on_done: Callable[[LiveChain], None] | None = None,
) -> dict[str, LiveChain]:
    """The chain of each endpoint, keyed by host; ``on_done`` is called as each one finishes."""
    context = verifying_context(cafile)
    semaphore = asyncio.Semaphore(max(1, concurrency))
    tasks = [asyncio.ensure_future(_one(e, semaphore, context, timeout)) for e in endpoints]
    results: dict[str, LiveChain] = {}
    for future in asyncio.as_completed(tasks):
        chain = await future
        results[chain.host] = chain
        if on_done is not None:
            on_done(chain)
    return results


def fetch_chains(
    endpoints: Iterable[Endpoint],
    *,
    timeout: float = 10.0,
    concurrency: int = DEFAULT_CONCURRENCY,
    cafile: str | os.PathLike[str] | None = None,
    on_done: Callable[[LiveChain], None] | None = None,
) -> dict[str, LiveChain]:
    """:func:`async_fetch_chains` for synchronous callers (runs its own event loop)."""
    unique: dict[str, Endpoint] = {}
    for endpoint in endpoints:
        name = canonical_host(endpoint.host)
        unique.setdefault(name, dataclasses.replace(endpoint, host=name))
    if not unique:
        return {}
    return asyncio.run(
        async_fetch_chains(
            list(unique.values()),
            timeout=timeout,
            concurrency=concurrency,
            cafile=cafile,
            on_done=on_done,
        )
    )

"""Glue between a pinned :class:`ssl.SSLContext` and clients that need more than ``ssl=ctx``.

Most clients take the context directly (``httpx.Client(verify=ctx)``,
``aiohttp`` ``ssl=ctx``, ``urllib3.PoolManager(ssl_context=ctx)``); see
``docs/clients/``. The modules here are for the ones that do not:

* :mod:`pinset.integrations.requests` — ``PinnedAdapter`` and ``pinned_session``.

Nothing here is imported by ``import pinset``; each module imports its client
library and needs it installed.
"""

__all__: list[str] = []

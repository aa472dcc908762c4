"""Pinning for :mod:`requests`: a transport adapter and a ready-made session.

::

    session = pinned_session("pinset.toml")
    session.get("https://api.example.com/v1/ping")

requests hands urllib3 a CA bundle (certifi, ``REQUESTS_CA_BUNDLE``, ``verify=PATH``)
on every request, and urllib3 loads it *into* the context it was given, which would
widen the trust of the pinned context for every later connection. The adapter
clears that bundle, so trust stays exactly what :func:`pinset.ssl_context` set up,
and it refuses ``verify=False`` or a bundle path with a :class:`ConfigError`
instead of quietly dropping verification or pinning. The bundle named by
``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` (which requests substitutes for
``verify=True``) is ignored rather than refused.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from pinset.enforce import PinnedSSLObject, PinnedSSLSocket, ssl_context
from pinset.errors import ConfigError
from pinset.policy import Policy

__all__ = ["PinnedAdapter", "PinnedSession", "pinned_session"]


def _is_pinned(ctx: Any) -> bool:
    return (
        isinstance(ctx, ssl.SSLContext)
        and isinstance(getattr(ctx, "pinset_policy", None), Policy)
        and issubclass(ctx.sslsocket_class, PinnedSSLSocket)
        and issubclass(ctx.sslobject_class, PinnedSSLObject)
    )


def _environment_bundle(verify: Any) -> bool:
    # With trust_env, requests itself turns verify=True into these variables' value.
    return isinstance(verify, str) and verify in {
        os.environ.get("REQUESTS_CA_BUNDLE"),
        os.environ.get("CURL_CA_BUNDLE"),
    }


def _check_verify(verify: Any) -> None:
    if verify is True or verify is None or _environment_bundle(verify):
        return
    if verify is False:
        raise ConfigError(
            "verify=False on a pinned requests session",
            key="verify",
            hint="a pinned session always verifies certificates; drop verify=False "
            "(or use a plain requests.Session for hosts you do not want to verify)",
        )
    raise ConfigError(
        f"verify={verify!r} on a pinned requests session",
        key="verify",
        hint="give the CA bundle to pinned_session(policy, cafile=...) instead: loading it "
        "per request would add it to the trust of every connection of the session",
    )


class PinnedAdapter(HTTPAdapter):
    """An :class:`~requests.adapters.HTTPAdapter` whose HTTPS connections use a pinned context.

    ``ssl_context`` must come from :func:`pinset.ssl_context`. The adapter also
    refuses plain ``http://`` requests to hosts the policy pins (a redirect to
    ``http://`` would otherwise bypass the pins). Other keyword arguments go to
    :class:`~requests.adapters.HTTPAdapter`.
    """

    def __init__(self, ssl_context: ssl.SSLContext, **kwargs: Any) -> None:
        if not _is_pinned(ssl_context):
            raise ConfigError(
                "PinnedAdapter needs a context made by pinset.ssl_context()",
                key="ssl_context",
                hint="ctx = pinset.ssl_context(policy); PinnedAdapter(ctx)",
            )
        # init_poolmanager runs inside HTTPAdapter.__init__ and reads it.
        self.ssl_context = ssl_context
        super().__init__(**kwargs)

    @property
    def policy(self) -> Policy:
        """The policy the adapter's context enforces."""
        policy: Policy = self.ssl_context.pinset_policy  # type: ignore[attr-defined]
        return policy

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["ssl_context"] = self.ssl_context
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # The target connection inside the CONNECT tunnel uses the pinned context.
        proxy_kwargs["ssl_context"] = self.ssl_context
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        _check_verify(verify)
        parts = urlsplit(request.url or "")
        if (
            parts.scheme.lower() == "http"
            and parts.hostname
            and self.policy.rule_for(parts.hostname) is not None
        ):
            raise ConfigError(
                f"plain http:// request to the pinned host {parts.hostname}",
                key="url",
                hint="use https:// (pins only mean something over TLS)",
            )
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        _check_verify(verify)
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        # requests just pointed the pool at certifi: urllib3 would load that bundle
        # into the shared pinned context. Trust comes from the context alone.
        conn.ca_certs = None
        conn.ca_cert_dir = None
        if url.lower().startswith("https"):
            conn.cert_reqs = "CERT_REQUIRED"


class PinnedSession(requests.Session):
    """A :class:`requests.Session` that keeps ``verify=True`` when ``REQUESTS_CA_BUNDLE`` is set.

    The environment's CA bundle would otherwise reach :class:`PinnedAdapter`, which
    refuses it; a pinned session's trust is whatever its context was built with.
    """

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is True or verify is None:
            # What requests would merge without the environment's substitution, so
            # that session.verify = False reaches the adapter (and is refused).
            settings["verify"] = True if verify is True else self.verify
        return settings


def pinned_session(
    policy: Policy | str | os.PathLike[str], **ssl_context_kwargs: Any
) -> requests.Session:
    """A :class:`requests.Session` whose HTTPS requests enforce ``policy``.

    ``ssl_context_kwargs`` go to :func:`pinset.ssl_context` (``cafile``, ``capath``,
    ``cadata``, ``observers``, ``clock``). Both ``https://`` and
    ``http://`` are mounted on a :class:`PinnedAdapter`.
    """
    adapter = PinnedAdapter(ssl_context(policy, **ssl_context_kwargs))
    session = PinnedSession()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session

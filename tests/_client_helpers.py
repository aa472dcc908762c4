"""What the client tests share: pins that match nothing, a pinned context, the wrapped error.

Import the autouse fixture by name (``from _client_helpers import
no_proxy_from_environment``) in a module whose clients must not pick up a proxy
from the environment.
"""

from __future__ import annotations

import ssl

import pytest

from _policies import BACKUP, OTHER
from pinset import PinMismatchError, Policy, spki_pin, ssl_context
from pinset.policy import DomainRule
from pinset.testing import TestPKI

__all__ = ["BACKUP", "HOSTS", "OTHER", "find_mismatch", "no_proxy_from_environment", "pinned"]

HOSTS = ["localhost", "127.0.0.1"]


@pytest.fixture(autouse=True)
def no_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def pinned(pki: TestPKI, root_pem: str, host: str, right: bool) -> ssl.SSLContext:
    """A context pinning ``host`` to the test intermediate (``right``) or to a key nobody has."""
    pin = spki_pin(pki.intermediate.cert) if right else OTHER
    return ssl_context(Policy(rules=(DomainRule(host, pins=(pin, BACKUP)),)), cadata=root_pem)


def find_mismatch(exc: BaseException) -> PinMismatchError | None:
    """The PinMismatchError a client wrapped, following causes, contexts, args and attributes."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, PinMismatchError):
            return item
        todo.extend([item.__cause__, item.__context__, *item.args])
        todo.extend(
            getattr(item, name, None) for name in ("reason", "certificate_error", "os_error")
        )
    return None

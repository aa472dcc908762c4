"""Enforcement under concurrency (issue 13): many handshakes at once, policies and chains mixed.

pinset has no call that replaces the policy of a live context: an application that
reloads its policy builds a new context (``ssl_context(new_policy)``) and swaps its
reference, while connections already opening on the old one finish under the old one.
These tests run that: threads hammer handshakes on contexts with different policies,
each context shared by several threads, and check that every verdict is one whole
policy's (its rule is that policy's rule, its reason what that policy says) and that
every observer hears only its own context's verdicts. The second test shares one
context's verdict memo between threads, two host names and more chains than it keeps.
Bundle updates applied in the background (``ssl_context(updates=...)``) are issue 13's
other helper's; their concurrency is tested with them.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from _policies import BACKUP, OTHER, pinning
from pinset import PinMismatchError, Policy, Verdict, spki_pin, ssl_context
from pinset.policy import DomainRule
from pinset.testing import LeafCert, TestPKI, TLSServer

HOST = "localhost"
THREADS = 4
ROUNDS = 25


def handshake(ctx: ssl.SSLContext, address: tuple[str, int], hostname: str = HOST) -> Verdict:
    with socket.create_connection(address, timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=hostname) as tls:
                tls.sendall(b"ping")
                assert tls.recv(16) == b"ping"
                verdict: Verdict | None = tls.pinset_verdict  # type: ignore[attr-defined]
        except PinMismatchError as exc:
            verdict = exc.verdict
    assert verdict is not None
    return verdict


def hammer(work: Callable[[int, int], None]) -> None:
    """Run ``work(thread, round)`` for THREADS threads x ROUNDS rounds, started together."""
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(thread: int) -> None:
        try:
            start.wait(30)
            for round_ in range(ROUNDS):
                work(thread, round_)
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]


class Heard:
    """An observer that keeps every verdict it is told of, from any thread."""

    def __init__(self) -> None:
        self.verdicts: list[Verdict] = []
        self._lock = threading.Lock()

    def __call__(self, verdict: Verdict, connection: object) -> None:
        with self._lock:
            self.verdicts.append(verdict)


def test_each_handshake_sees_one_whole_policy_while_contexts_are_swapped(
    pki: TestPKI, root_pem: str, echo_server: TLSServer
) -> None:
    right = spki_pin(pki.intermediate.cert)
    expired = dt.date(2020, 1, 1)
    # Five policies for one host, each with its own outcome on the same served chain.
    policies: dict[str, Policy] = {
        "pinned": pinning((HOST, (right,))),
        "pin-mismatch": pinning((HOST, (OTHER,))),
        "report-only-mismatch": pinning((HOST, (OTHER,)), enforce=False),
        "policy-expired": Policy(
            rules=(DomainRule(HOST, pins=(OTHER, BACKUP), expiration=expired),)
        ),
        "not-pinned": pinning(("example.com", (OTHER,))),
    }
    names = sorted(policies)
    heard = {name: Heard() for name in names}
    contexts = {
        name: ssl_context(policies[name], cadata=root_pem, observers=[heard[name]])
        for name in names
    }
    results: list[tuple[str, Verdict]] = []
    lock = threading.Lock()

    def work(thread: int, round_: int) -> None:
        # Every round each thread takes the next policy: at any moment the threads hold
        # different contexts, as when a reload swaps the reference mid-traffic.
        name = names[(thread + round_) % len(names)]
        verdict = handshake(contexts[name], echo_server.address)
        with lock:
            results.append((name, verdict))

    hammer(work)
    assert len(results) == THREADS * ROUNDS
    for name, verdict in results:
        policy = policies[name]
        assert verdict.reason == name
        # The rule is the very object of the policy the context was built with.
        assert verdict.rule is policy.rule_for(HOST)
        assert verdict.allowed is (name != "pin-mismatch")
    per_policy = THREADS * ROUNDS // len(names)
    for name in names:
        seen = heard[name].verdicts
        if name == "not-pinned":
            assert seen == []  # observers hear of pinned hosts only
            continue
        assert len(seen) == per_policy
        assert {v.reason for v in seen} == {name}
        assert all(v.rule is policies[name].rule_for(HOST) for v in seen)
    records = echo_server.wait_for_connections(THREADS * ROUNDS, timeout=30)
    refused = sum(1 for name, _ in results if name == "pin-mismatch")
    assert sum(1 for r in records if r.received == 0) == refused
    assert echo_server.received_bytes == 4 * (THREADS * ROUNDS - refused)


@pytest.fixture
def six_servers(pki: TestPKI) -> Iterator[list[tuple[LeafCert, TLSServer]]]:
    leaves = [pki.leaf() for _ in range(6)]
    with ExitStack() as stack:
        yield [(leaf, stack.enter_context(TLSServer(leaf, mode="echo"))) for leaf in leaves]


def test_one_shared_memo_two_hosts_and_more_chains_than_it_keeps(
    root_pem: str, six_servers: list[tuple[LeafCert, TLSServer]]
) -> None:
    # localhost pins the keys of leaves 0-2, 127.0.0.1 those of leaves 3-5: the same
    # chain is allowed for one name and refused for the other, in the same memo, by
    # threads that race to keep and evict six chains per host (the memo keeps four).
    leaves = [leaf for leaf, _ in six_servers]
    pins = [spki_pin(leaf.cert) for leaf in leaves]
    policy = pinning(("localhost", tuple(pins[:3])), ("127.0.0.1", tuple(pins[3:])))
    ctx = ssl_context(policy, cadata=root_pem, observers=())
    results: list[tuple[int, str, Verdict]] = []
    lock = threading.Lock()

    def work(thread: int, round_: int) -> None:
        index = (thread + round_) % len(six_servers)
        host = ("localhost", "127.0.0.1")[(thread + round_ // 2) % 2]
        verdict = handshake(ctx, six_servers[index][1].address, host)
        with lock:
            results.append((index, host, verdict))

    hammer(work)
    assert len(results) == THREADS * ROUNDS
    for index, host, verdict in results:
        mine = index < 3 if host == "localhost" else index >= 3
        assert verdict.host == host
        assert verdict.rule is policy.rule_for(host)
        assert verdict.chain[0] == leaves[index].cert.public_bytes(Encoding.DER)
        assert (verdict.allowed, verdict.reason) == (
            (True, "pinned") if mine else (False, "pin-mismatch")
        )
        assert verdict.matched_pin == (pins[index] if mine else None)
    outcomes = {(host, v.allowed) for _, host, v in results}
    assert outcomes == {("localhost", True), ("localhost", False)} | {
        ("127.0.0.1", True),
        ("127.0.0.1", False),
    }

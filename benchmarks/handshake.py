"""Cost of pinning: loopback TLS handshakes and HTTPS requests, pinned context vs plain context.

Both contexts trust the same test root and talk to the same loopback server; the
only difference is the pin check after the handshake. Each iteration runs one
pinned and one plain sample back to back (the order alternates), so drift in the
machine's speed hits both alike. The headline is the median of the per-iteration
ratios pinned/plain; the target is at most 1.01 (issue 10).

The CT part (issue 12) compares, the same way, a context that also requires CT
(``require-ct = true``: the leaf embeds two SCTs from test logs) with one that only
pins, on a server serving that leaf: per handshake (the verdict memo keeps a chain
that passed, so a repeated chain pays nothing), and per verdict on first sight
(the SCT signatures verified).

    .venv/bin/python benchmarks/handshake.py --iterations 2000
    .venv/bin/python benchmarks/handshake.py --json
    PINSET_BENCH_QUICK=1 .venv/bin/python benchmarks/handshake.py   # seconds (_quick.py)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import json
import multiprocessing
import platform
import socket
import ssl
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _quick import judged, scaled  # benchmarks/_quick.py, next to this script
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pinset import Pin, PinnedSSLContext, Policy, ct, evaluate, spki_pin, ssl_context
from pinset.policy import DomainRule
from pinset.testing import CTLog, LeafCert, TestPKI, TLSServer, issue_with_scts, log_list

TARGET = 1.01
HOST = "localhost"


def _contexts(pki: TestPKI) -> tuple[PinnedSSLContext, ssl.SSLContext]:
    root_pem = pki.root.cert_pem.bytes().decode("ascii")
    backup = Pin(hashlib.sha256(b"benchmark backup key").digest())
    policy = Policy(rules=(DomainRule(HOST, pins=(spki_pin(pki.intermediate.cert), backup)),))
    pinned = ssl_context(policy, cadata=root_pem)
    # The plain context is configured exactly like the pinned one, minus the pins.
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    plain.minimum_version = ssl.TLSVersion.TLSv1_2
    plain.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    plain.load_verify_locations(cadata=root_pem)
    return pinned, plain


def _serve(chain_pem: bytes, key_pem: bytes, mode: Any, conn: Any) -> None:
    """Child process: serve on loopback until the parent says stop."""
    chain = x509.load_pem_x509_certificates(chain_pem)
    key: Any = serialization.load_pem_private_key(key_pem, password=None)
    with TLSServer(chain, key, mode=mode) as server:
        conn.send(server.address)
        conn.recv()


@contextmanager
def _server_process(
    pki: TestPKI, mode: str, leaf: LeafCert | None = None
) -> Iterator[tuple[str, int]]:
    # A separate process keeps the server's threads off the client's GIL, so the
    # timings are the client's work plus the server's real latency.
    leaf = leaf if leaf is not None else pki.leaf(HOST, "127.0.0.1")
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(
        target=_serve,
        args=(leaf.cert_chain_pem.bytes(), leaf.private_key_pem.bytes(), mode, child),
        daemon=True,
    )
    process.start()
    try:
        address: tuple[str, int] = parent.recv()
        yield address
    finally:
        parent.send("stop")
        process.join(10)


def _handshake(ctx: ssl.SSLContext, address: tuple[str, int]) -> None:
    with (
        socket.create_connection(address) as sock,
        ctx.wrap_socket(sock, server_hostname=HOST),
    ):
        pass


def _request(ctx: ssl.SSLContext, address: tuple[str, int]) -> None:
    conn = http.client.HTTPSConnection(HOST, address[1], context=ctx, timeout=10)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"unexpected HTTP status {response.status}")
    finally:
        conn.close()


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e3  # microseconds


def _compare(
    name: str,
    op: Callable[[ssl.SSLContext, tuple[str, int]], None],
    pinned: ssl.SSLContext,
    plain: ssl.SSLContext,
    address: tuple[str, int],
    iterations: int,
    warmup: int,
) -> dict[str, Any]:
    for _ in range(warmup):
        op(pinned, address)
        op(plain, address)
    pinned_us: list[float] = []
    plain_us: list[float] = []
    ratios: list[float] = []
    for i in range(iterations):
        if i % 2:
            a = _timed(lambda: op(pinned, address))
            b = _timed(lambda: op(plain, address))
        else:
            b = _timed(lambda: op(plain, address))
            a = _timed(lambda: op(pinned, address))
        pinned_us.append(a)
        plain_us.append(b)
        ratios.append(a / b)
    return {
        "name": name,
        "iterations": iterations,
        "pinned_median_us": statistics.median(pinned_us),
        "plain_median_us": statistics.median(plain_us),
        "ratio_of_medians": statistics.median(pinned_us) / statistics.median(plain_us),
        "median_ratio": statistics.median(ratios),
    }


def _verdict_cost(
    pki: TestPKI, pinned: PinnedSSLContext, rounds: int = 2000
) -> tuple[float, float]:
    """Microseconds per verdict on a three-certificate chain: first sight, and seen before."""
    from pinset.enforce._memo import VerdictMemo

    leaf = pki.leaf(HOST)
    chain = tuple(c.public_bytes(encoding=_der()) for c in leaf.full_chain)
    policy = pinned.pinset_policy
    now = dt.datetime.now(dt.timezone.utc)
    rounds = scaled(rounds, 50)
    start = time.perf_counter_ns()
    for _ in range(rounds):
        evaluate(policy, HOST, chain, now=now)
    fresh = (time.perf_counter_ns() - start) / 1e3 / rounds
    memo = VerdictMemo(policy)
    start = time.perf_counter_ns()
    for _ in range(rounds):
        memo.verdict(HOST, chain, now)
    return fresh, (time.perf_counter_ns() - start) / 1e3 / rounds


def _ct_setup(pki: TestPKI) -> tuple[LeafCert, ct.LogList, Policy, Policy]:
    """A leaf with two SCTs from test logs, their log list, and the policies with and without CT."""
    logs = [CTLog("Bench Alpha", "Alpha"), CTLog("Bench Beta", "Beta")]
    now = dt.datetime.now(dt.timezone.utc)
    leaf = issue_with_scts(pki.intermediate, HOST, logs, issued=now - dt.timedelta(days=1))
    listed = ct.parse_log_list(log_list(logs, now), source="benchmark logs")
    backup = Pin(hashlib.sha256(b"benchmark backup key").digest())
    pins = (spki_pin(pki.intermediate.cert), backup)
    with_ct = Policy(rules=(DomainRule(HOST, pins=pins, require_ct=True),))
    pins_only = Policy(rules=(DomainRule(HOST, pins=pins),))
    return leaf, listed, with_ct, pins_only


def _ct_verdict_cost(
    leaf: LeafCert, listed: ct.LogList, policy: Policy, rounds: int = 500
) -> tuple[float, float]:
    """Microseconds per first-sight verdict on the SCT leaf: pins alone, pins then CT."""
    from pinset.enforce._ct import ct_verdict

    chain = tuple(c.public_bytes(encoding=_der()) for c in leaf.full_chain)
    now = dt.datetime.now(dt.timezone.utc)
    rounds = scaled(rounds, 20)
    start = time.perf_counter_ns()
    for _ in range(rounds):
        evaluate(policy, HOST, chain, now=now)
    pins = (time.perf_counter_ns() - start) / 1e3 / rounds
    start = time.perf_counter_ns()
    for _ in range(rounds):
        verdict = ct_verdict(evaluate(policy, HOST, chain, now=now), listed, now)
    both = (time.perf_counter_ns() - start) / 1e3 / rounds
    if verdict.reason != "pinned":
        raise RuntimeError(f"the CT benchmark chain does not pass: {verdict.describe()}")
    return pins, both


def _ct_part(pki: TestPKI, iterations: int, warmup: int) -> dict[str, Any]:
    leaf, listed, with_ct, pins_only = _ct_setup(pki)
    root_pem = pki.root.cert_pem.bytes().decode("ascii")
    ct_ctx = ssl_context(with_ct, cadata=root_pem, observers=(), ct_log_list=listed)
    pin_ctx = ssl_context(pins_only, cadata=root_pem, observers=())
    with _server_process(pki, "silent", leaf) as address:
        handshake = _compare(
            "tls-handshake, require-ct vs pins only", _handshake, ct_ctx, pin_ctx, address,
            iterations, warmup,
        )  # fmt: skip
    pins_us, both_us = _ct_verdict_cost(leaf, listed, with_ct)
    return {
        "handshake": handshake,
        "first_sight_verdict_us": {"pins": pins_us, "pins_and_ct": both_us},
    }


def _der() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000, help="pairs per measurement")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured pairs first")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0:
        parser.error("--iterations must be at least 1 and --warmup at least 0")
    args.iterations, args.warmup = scaled(args.iterations, 20), scaled(args.warmup, 3)

    pki = TestPKI()
    pinned, plain = _contexts(pki)
    results: list[dict[str, Any]] = []
    operations = (
        ("tls-handshake", _handshake, "silent"),
        ("https-request (http.client, new connection each)", _request, "http"),
    )
    for name, op, mode in operations:
        with _server_process(pki, mode) as address:
            results.append(_compare(name, op, pinned, plain, address, args.iterations, args.warmup))
    first_sight, seen_before = _verdict_cost(pki, pinned)
    ct_part = _ct_part(pki, args.iterations, args.warmup)
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "key_type": pki.key_type,
        "target_ratio": TARGET,
        "verdict_us": {"first_sight": first_sight, "seen_before": seen_before},
        "results": results,
        "ct": ct_part,
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"Python {report['python']}, {report['openssl']}, {pki.key_type} keys, loopback")
        print(
            f"verdict alone: {first_sight:.1f} µs for a chain seen the first time, "
            f"{seen_before:.1f} µs for one seen before"
        )
        for r in results:
            verdict = judged(r["median_ratio"] <= TARGET, "ok", "ABOVE TARGET")
            print(
                f"{r['name']}: pinned {r['pinned_median_us']:.0f} µs, "
                f"plain {r['plain_median_us']:.0f} µs (medians of {r['iterations']}); "
                f"median ratio pinned/plain {r['median_ratio']:.3f} "
                f"(ratio of medians {r['ratio_of_medians']:.3f}) [{verdict} ≤ {TARGET}]"
            )
        h, v = ct_part["handshake"], ct_part["first_sight_verdict_us"]
        print(
            f"{h['name']}: {h['pinned_median_us']:.0f} µs vs {h['plain_median_us']:.0f} µs "
            f"(medians of {h['iterations']}); median ratio {h['median_ratio']:.3f} "
            f"(ratio of medians {h['ratio_of_medians']:.3f})"
        )
        print(
            f"first-sight verdict on the SCT leaf: pins {v['pins']:.1f} µs, pins and CT "
            f"{v['pins_and_ct']:.1f} µs (ratio {v['pins_and_ct'] / v['pins']:.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

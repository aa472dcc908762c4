"""Cost of pinning huge certificates: pinned vs plain handshakes, verdict time and memory.

Four served chains, each against a pinned and a plain context that trust the same root:
an ordinary EC leaf (the baseline), a leaf with 10,000 DNS names, an RSA-8192 leaf and a
chain 50 intermediates deep. Pairs of handshakes alternate which context goes first; the
headline per chain is the median ratio pinned/plain. Also printed: the verdict alone on a
chain seen the first time (``evaluate``), the Python memory of 20 pinned handshakes
(tracemalloc peak) and the process's peak RSS at the end.

    .venv/bin/python benchmarks/big_certs.py --iterations 200
    .venv/bin/python benchmarks/big_certs.py --json
    PINSET_BENCH_QUICK=1 .venv/bin/python benchmarks/big_certs.py   # seconds (_quick.py)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing
import platform
import resource
import socket
import ssl
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _quick import scaled  # benchmarks/_quick.py, next to this script
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from pinset import Pin, Policy, evaluate, spki_pin, ssl_context
from pinset.policy import DomainRule
from pinset.testing import CertificateAuthority, LeafCert, TLSServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
# The tests' fixed RSA-8192 key: generating one takes seconds to minutes.
from _certs import rsa_8192

HOST = "localhost"
BACKUP = Pin(hashlib.sha256(b"benchmark backup key").digest())
TRACED = scaled(20, 3)  # pinned handshakes under tracemalloc
VERDICTS = scaled(100, 5)  # verdicts timed per chain


def _chains() -> list[tuple[str, CertificateAuthority, LeafCert]]:
    root = CertificateAuthority.create()
    ca = root.create_child_ca()
    names = [f"h{i:04d}.t" for i in range(9_999)] + [HOST]
    deep = root
    for level in range(50):
        deep = deep.create_child_ca(f"intermediate {level + 1} of 50")
    return [
        ("plain EC P-256 leaf", root, ca.issue_cert(HOST)),
        ("10,000 DNS names", root, ca.issue_cert(*names, common_name="10,000 names")),
        ("RSA-8192 leaf", root, ca.issue_cert(HOST, private_key=rsa_8192())),
        ("50 intermediates", root, deep.issue_cert(HOST)),
    ]


def _serve(chain_pem: bytes, key_pem: bytes, conn: Any) -> None:
    """Child process: serve on loopback until the parent says stop."""
    chain = x509.load_pem_x509_certificates(chain_pem)
    # Our own keys (the RSA-8192 one known good): re-checking its primes would take seconds.
    key: Any = serialization.load_pem_private_key(
        key_pem, password=None, unsafe_skip_rsa_key_validation=True
    )
    with TLSServer(chain, key, mode="silent") as server:
        conn.send(server.address)
        conn.recv()


@contextmanager
def _server_process(leaf: LeafCert) -> Iterator[tuple[str, int]]:
    # Another process keeps the server's work off the client's GIL.
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(
        target=_serve,
        args=(leaf.cert_chain_pem.bytes(), leaf.private_key_pem.bytes(), child),
        daemon=True,
    )
    process.start()
    try:
        address: tuple[str, int] = parent.recv()
        yield address
    finally:
        parent.send("stop")
        process.join(10)


def _contexts(root: CertificateAuthority) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    root_pem = root.cert_pem.bytes().decode("ascii")
    policy = Policy(rules=(DomainRule(HOST, pins=(spki_pin(root.cert), BACKUP)),))
    pinned = ssl_context(policy, cadata=root_pem, observers=())
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    plain.minimum_version = ssl.TLSVersion.TLSv1_2
    plain.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    plain.load_verify_locations(cadata=root_pem)
    return pinned, plain


def _handshake(ctx: ssl.SSLContext, address: tuple[str, int]) -> None:
    with socket.create_connection(address) as sock, ctx.wrap_socket(sock, server_hostname=HOST):
        pass


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e3  # microseconds


def _measure(
    name: str, root: CertificateAuthority, leaf: LeafCert, iterations: int, warmup: int
) -> dict[str, Any]:
    pinned, plain = _contexts(root)
    with _server_process(leaf) as address:
        for _ in range(warmup):
            _handshake(pinned, address)
            _handshake(plain, address)
        pinned_us: list[float] = []
        plain_us: list[float] = []
        for i in range(iterations):
            pair = [(pinned, pinned_us), (plain, plain_us)]
            for ctx, times in pair if i % 2 else reversed(pair):
                times.append(_timed(lambda ctx=ctx: _handshake(ctx, address)))  # type: ignore[misc]
        tracemalloc.start()
        for _ in range(TRACED):
            _handshake(pinned, address)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    chain = tuple(c.public_bytes(Encoding.DER) for c in leaf.full_chain)
    policy = pinned.pinset_policy  # type: ignore[attr-defined]
    now = dt.datetime.now(dt.timezone.utc)
    start = time.perf_counter_ns()
    for _ in range(VERDICTS):
        assert evaluate(policy, HOST, chain, now=now).allowed
    verdict_us = (time.perf_counter_ns() - start) / 1e3 / VERDICTS
    return {
        "name": name,
        "leaf_der_bytes": len(chain[0]),
        "verified_chain_length": len(chain),
        "iterations": iterations,
        "pinned_median_us": statistics.median(pinned_us),
        "plain_median_us": statistics.median(plain_us),
        "median_ratio": statistics.median(p / q for p, q in zip(pinned_us, plain_us, strict=True)),
        "verdict_first_sight_us": verdict_us,
        "traced_handshakes": TRACED,
        "tracemalloc_peak_bytes": peak,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200, help="pairs per chain")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured pairs first")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0:
        parser.error("--iterations must be at least 1 and --warmup at least 0")
    args.iterations, args.warmup = scaled(args.iterations, 8), scaled(args.warmup, 1)
    results = [
        _measure(name, root, leaf, args.iterations, args.warmup) for name, root, leaf in _chains()
    ]
    # Linux reports ru_maxrss in KiB.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "peak_rss_kib": rss,
        "results": results,
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"Python {report['python']}, {report['openssl']}, loopback")
    base = results[0]["pinned_median_us"]
    for r in results:
        print(
            f"{r['name']}: leaf {r['leaf_der_bytes']:,} B, chain of {r['verified_chain_length']}; "
            f"pinned {r['pinned_median_us']:.0f} µs, plain {r['plain_median_us']:.0f} µs "
            f"(medians of {r['iterations']}), median ratio pinned/plain {r['median_ratio']:.3f}, "
            f"{r['pinned_median_us'] / base:.1f}x the plain leaf's; verdict alone "
            f"{r['verdict_first_sight_us']:.0f} µs; Python peak over {r['traced_handshakes']} "
            f"handshakes {r['tracemalloc_peak_bytes'] / 1024:.0f} KiB"
        )
    print(f"process peak RSS: {rss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

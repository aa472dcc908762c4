"""Benchmark: ``pinset audit --live`` over N loopback TLS endpoints vs the openssl pipeline loop.

Starts one server process that listens on N loopback ports with asyncio, each
port serving its own leaf certificate (distinct key and name) under one test
CA. Writes a policy pinning every name (its leaf plus a backup key), maps each
name to its port, and times the live audit. Then runs the pipeline pinning
guides recommend::

    openssl s_client -connect 127.0.0.1:PORT -servername NAME </dev/null 2>/dev/null \\
      | openssl x509 -pubkey -noout | openssl pkey -pubin -outform der \\
      | openssl dgst -sha256 -binary | base64

over a sample of the same endpoints, extrapolates per endpoint, and prints
endpoints per second for both, the ratio (target >= 20x) and whether all N were
audited within 10 s. Usage::

    .venv/bin/python benchmarks/audit_live.py [--n 200] [--sample 20]
    PINSET_BENCH_QUICK=1 .venv/bin/python benchmarks/audit_live.py   # seconds (_quick.py)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _quick import QUICK, judged, scaled  # benchmarks/_quick.py, next to this script

BUDGET_SECONDS = 10.0
TARGET_RATIO = 20.0


def serve(n: int) -> None:
    """Server mode: print the CA and endpoints as one JSON line, serve until stdin closes."""
    from pinset.pins import spki_pin
    from pinset.testing import CertificateAuthority, generate_key

    root = CertificateAuthority.create("bench root")
    inter = root.create_child_ca("bench intermediate")
    endpoints = []
    contexts = []
    for i in range(n):
        name = f"h{i}.bench.test"
        leaf = inter.issue_cert(name)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(ctx)
        contexts.append((name, ctx))
        endpoints.append(
            {"name": name, "pin": str(spki_pin(leaf.cert)), "backup": str(spki_pin(generate_key()))}
        )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def main() -> None:
        servers = []
        for (_name, ctx), endpoint in zip(contexts, endpoints, strict=True):
            server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx, backlog=256)
            endpoint["port"] = server.sockets[0].getsockname()[1]
            servers.append(server)
        print(
            json.dumps({"ca": root.cert_pem.bytes().decode(), "endpoints": endpoints}), flush=True
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
        for server in servers:
            server.close()

    asyncio.run(main())


def openssl_pin(name: str, port: int) -> str:
    pipeline = (
        f"openssl s_client -connect 127.0.0.1:{port} -servername {name} </dev/null 2>/dev/null"
        " | openssl x509 -pubkey -noout | openssl pkey -pubin -outform der"
        " | openssl dgst -sha256 -binary | base64"
    )
    return subprocess.run(
        ["sh", "-c", pipeline], capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="endpoints (default 200)")
    parser.add_argument("--sample", type=int, default=20, help="endpoints for the openssl loop")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    args.n, args.sample = scaled(args.n, 20), scaled(args.sample, 3)

    from pinset.audit import audit

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        setup = json.loads(server.stdout.readline())
        endpoints = setup["endpoints"]
        with tempfile.TemporaryDirectory() as tmp:
            ca = Path(tmp) / "ca.pem"
            ca.write_text(setup["ca"], encoding="utf-8")
            policy = Path(tmp) / "pinset.toml"
            policy.write_text(
                "".join(
                    f'[[domain]]\nname = "{e["name"]}"\nexpiration = 2099-01-01\n'
                    f'pins = ["{e["pin"]}", "{e["backup"]}"]\n\n'
                    for e in endpoints
                ),
                encoding="utf-8",
            )
            connect = {e["name"]: ("127.0.0.1", e["port"]) for e in endpoints}
            started = time.perf_counter()
            report = audit(
                [policy],
                now=dt.datetime.now(dt.timezone.utc),
                live=True,
                connect=connect,
                cafile=ca,
                timeout=10,
            )
            pinset_seconds = time.perf_counter() - started
        bad = [f for f in report.findings if f.severity != "info"]
        if bad:
            print(f"unexpected findings: {bad[:3]}", file=sys.stderr)
            return 1

        sample = endpoints[: args.sample]
        started = time.perf_counter()
        for e in sample:
            got = "sha256/" + openssl_pin(e["name"], e["port"])
            if got != e["pin"]:
                print(f"openssl pipeline disagrees for {e['name']}: {got}", file=sys.stderr)
                return 1
        openssl_seconds = time.perf_counter() - started
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=10)

    pinset_rate = args.n / pinset_seconds
    openssl_rate = len(sample) / openssl_seconds
    ratio = pinset_rate / openssl_rate
    print(f"cpus: {os.cpu_count()}, endpoints: {args.n}, openssl sample: {len(sample)}")
    rows = (
        ("pinset audit --live", pinset_seconds, args.n, pinset_rate),
        ("openssl pipeline", openssl_seconds, len(sample), openssl_rate),
    )
    for label, seconds, count, rate in rows:
        print(f"{label:<20}: {seconds:7.3f} s for {count:4d}  {rate:8.1f} endpoints/s")
    print(f"openssl extrapolated to {args.n}: {args.n / openssl_rate:.1f} s")
    verdict = judged(ratio >= TARGET_RATIO, "met", "NOT met")
    print(f"ratio: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x: {verdict})")
    within = pinset_seconds <= BUDGET_SECONDS
    print(f"all {args.n} audited within {BUDGET_SECONDS:.0f} s: {judged(within, 'yes', 'NO')}")
    return 0 if QUICK or (within and ratio >= TARGET_RATIO) else 1


if __name__ == "__main__":
    sys.exit(main())

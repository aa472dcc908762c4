"""Load the report collector on loopback and measure ingest rate, latency and summary time.

    .venv/bin/python benchmarks/collector_ingest.py [--count 20000] [--concurrency 32]
        [--workers 1] [--postgres postgresql+psycopg://…] [--summary-rows 1000000]

For SQLite (a temporary file) and, with ``--postgres`` (an admin URL: a fresh
database is created and dropped), PostgreSQL:

1. starts ``pinset collector serve`` (real uvicorn) as a subprocess, rate limit off;
2. posts ``--count`` realistic reports (TrustKit iOS/Android and pinset shapes,
   skewed over domains and app versions, 10% exact duplicates) from
   ``--concurrency`` keep-alive connections (raw asyncio HTTP/1.1, so the client
   costs little CPU next to the server), and prints accepted reports/s and p50/p99;
3. bulk-inserts ``--summary-rows`` reports straight into a fresh database with
   SQL (plus their roll-ups), and times ``GET /v1/summary`` over them (and, for
   information, ``GET /v1/chains`` with its known pins and issuers).

Each figure is printed with its ratio against the target of issue 5:
≥ 2,000 reports/s, p99 < 50 ms, summary < 300 ms (ratio ≥ 1.00 meets the target).
``PINSET_BENCH_QUICK=1``: a few hundred reports and a few thousand rows, in seconds
(``_quick.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _quick import scaled  # benchmarks/_quick.py, next to this script

from pinset.testing import TestPKI

TOKEN = "bench-token"  # noqa: S105 - the throw-away collector's read token
TARGET_RATE = 2000.0
TARGET_P99_MS = 50.0
TARGET_SUMMARY_MS = 300.0


# -- realistic reports ----------------------------------------------------------


def _zipf_choice(rng: random.Random, items: list[Any]) -> Any:
    weights = [1.0 / (i + 1) for i in range(len(items))]
    return rng.choices(items, weights)[0]


def make_bodies(count: int, seed: int = 7) -> list[bytes]:
    """``count`` report bodies; 10% are exact repeats of an earlier one."""
    rng = random.Random(seed)
    pki = TestPKI()
    hosts = [f"api{i}.example.com" for i in range(40)]
    genuine = {h: pki.leaf(h) for h in hosts[:10]}
    forged = {h: pki.rogue.issue_cert(h) for h in hosts[:10]}
    versions = ["3.2.0", "3.1.4", "3.1.3", "3.0.0", "2.9.9", "2.8.0"]
    pins = [
        'pin-sha256="d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="',
        'pin-sha256="E9CZ9INDbd+2eRQozYqqbQ2yXLVKB9+xcprMF+44U1g="',
    ]
    bodies: list[bytes] = []
    for i in range(count):
        if bodies and rng.random() < 0.10:
            bodies.append(rng.choice(bodies))
            continue
        host = _zipf_choice(rng, hosts[:10])
        leaf = forged[host] if rng.random() < 0.7 else genuine[host]
        chain = [b.bytes().decode() for b in leaf.cert_chain_pems]
        platform = rng.choice(["IOS", "ANDROID", "PYTHON"])
        report: dict[str, Any] = {
            "date-time": f"2026-11-18T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "hostname": host,
            "port": 443,
            "noted-hostname": host,
            "include-subdomains": False,
            "validated-certificate-chain": chain,
            "known-pins": pins,
            "app-bundle-id": "com.example.bank",
            "app-version": _zipf_choice(rng, versions),
            "app-platform": platform,
            "enforce-pinning": True,
            "validation-result": rng.choice([1, 1, 1, 2]),
            "app-vendor-id": str(uuid.UUID(int=rng.getrandbits(128))),
        }
        if platform != "IOS":
            report["served-certificate-chain"] = chain
        bodies.append(json.dumps(report).encode())
    return bodies


# -- the server -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return int(response.status), response.read()


@contextmanager
def serve(db_url: str, workers: int) -> Iterator[tuple[str, int]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pinset", "collector", "serve", "--port", str(port),
         "--db", db_url, "--token", TOKEN, "--rate-limit", "0", "--workers", str(workers),
         "--log-level", "error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the collector exited with {proc.returncode}")
            try:
                if _get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the collector did not start") from None
                time.sleep(0.1)
        yield "127.0.0.1", port
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the load generator -------------------------------------------------------------


async def _client(
    host: str, port: int, queue: Iterator[bytes], latencies: list[float], statuses: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    head = b"POST /v1/report HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    try:
        for body in queue:
            request = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            statuses.append(int(status_line.split()[1]))
    finally:
        writer.close()


async def _load(
    host: str, port: int, bodies: list[bytes], concurrency: int
) -> tuple[float, list[float], list[int]]:
    latencies: list[float] = []
    statuses: list[int] = []
    shared = iter(bodies)  # one event loop thread: the clients take turns on one iterator
    start = time.perf_counter()
    await asyncio.gather(
        *(_client(host, port, shared, latencies, statuses) for _ in range(concurrency))
    )
    return time.perf_counter() - start, latencies, statuses


def ingest(db_url: str, label: str, bodies: list[bytes], concurrency: int, workers: int) -> None:
    with serve(db_url, workers) as (host, port):
        warm = bodies[: scaled(300, 50)]
        asyncio.run(_load(host, port, warm, 8))  # warm up: imports, caches, pool
        elapsed, latencies, statuses = asyncio.run(_load(host, port, bodies, concurrency))
    accepted = statuses.count(202)
    if accepted != len(bodies):
        codes = {code: statuses.count(code) for code in sorted(set(statuses))}
        print(f"{label:<10} WARNING: not every report was accepted: {codes}")
    rate = accepted / elapsed
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    p50, p99 = q[49] * 1000, q[98] * 1000
    print(
        f"{label:<10} ingest: {rate:,.0f} reports/s accepted "
        f"({accepted}/{len(bodies)} answered 202), "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    print(
        f"{'':<10} ratio vs target: rate {rate / TARGET_RATE:.2f}x (>= {TARGET_RATE:,.0f}/s), "
        f"p99 {TARGET_P99_MS / p99:.2f}x (< {TARGET_P99_MS:.0f} ms)"
    )


# -- the summary over a million reports ------------------------------------------------


def bulk_fill(db_url: str, rows: int, seed: int = 11) -> float:
    """Insert ``rows`` reports of the last 7 days with SQL, then their roll-ups (seconds taken)."""
    # Imported here: pinset.collector brings the whole web app, which only the server needs
    # (collector_load.py imports this module for its reports).
    from pinset.collector._db import create_engine, migrate
    from pinset.collector._normalize import normalize

    engine = create_engine(db_url)
    migrate(engine)
    rng = random.Random(seed)
    bodies = make_bodies(200, seed)
    samples = [normalize(json.loads(b), received=0) for b in bodies]
    now = int(time.time())
    start = time.perf_counter()
    columns = ("dedup_key", "first_seen", "last_seen", "count", "date_time", "hostname",
               "port", "noted_hostname", "app_bundle_id", "app_version", "app_platform",
               "validation_result", "served_chain_key", "validated_chain_key", "known_pins",
               "variant", "extra")  # fmt: skip
    hosts = [f"api{i}.example.com" for i in range(40)]
    pins_json = json.dumps(list(samples[0].known_pins))

    def rows_iter() -> Iterator[tuple[Any, ...]]:
        for _ in range(rows):
            s = rng.choice(samples)
            seen = now - int(rng.random() ** 1.5 * 7 * 86400)  # more failures recently
            yield (
                uuid.UUID(int=rng.getrandbits(128)).hex + "0" * 32, seen, seen, 1,
                seen, _zipf_choice(rng, hosts), 443, s.noted_hostname, s.app_bundle_id,
                s.app_version, s.app_platform, s.validation_result, s.served_chain_key,
                s.served_chain_key, pins_json, s.variant, "{}",
            )  # fmt: skip

    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cur.copy(f"COPY reports ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows_iter():
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO reports ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
            batch: list[tuple[Any, ...]] = []
            for row in rows_iter():
                batch.append(row)
                if len(batch) == 50_000:
                    cur.executemany(sql, batch)
                    batch.clear()
            cur.executemany(sql, batch)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        for dimension, value in (
            ("hostname", "hostname"),
            ("app_version", "COALESCE(app_version, '')"),
            ("validation_result", "validation_result"),
            ("chain", "served_chain_key || ' ' || hostname"),
        ):
            conn.execute(sa.text(
                "INSERT INTO failure_hours (dimension, hour, value, count)"  # noqa: S608
                f" SELECT '{dimension}', last_seen / 3600 * 3600, {value}, SUM(count)"
                " FROM reports WHERE served_chain_key IS NOT NULL GROUP BY 2, 3"
            ))  # fmt: skip
        conn.execute(sa.text(
            "INSERT INTO failure_minutes (minute, hostname, count)"
            " SELECT last_seen / 60 * 60, hostname, SUM(count) FROM reports GROUP BY 1, 2"
        ))  # fmt: skip
        elements = (
            "json_array_elements_text(r.known_pins) AS j(value)"
            if engine.dialect.name == "postgresql"
            else "json_each(r.known_pins) AS j"
        )
        conn.execute(sa.text(
            "INSERT INTO chain_pins (chain_key, hour, pin)"  # noqa: S608
            " SELECT DISTINCT r.served_chain_key, r.last_seen / 3600 * 3600, j.value"
            f" FROM reports AS r, {elements} WHERE r.served_chain_key IS NOT NULL"
        ))  # fmt: skip
        conn.execute(sa.text("ANALYZE"))
        rollup = conn.execute(sa.text("SELECT COUNT(*) FROM failure_hours")).scalar_one()
    engine.dispose()
    print(f"{'':<10} bulk insert of {rows:,} reports + roll-ups ({rollup:,} hour rows) took "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    return time.perf_counter() - start


def _median_get(url: str) -> tuple[float, Any]:
    _get(url)  # warm the page cache and the connection pool
    times = []
    for _ in range(7):
        start = time.perf_counter()
        status, body = _get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert status == 200
    return statistics.median(times), json.loads(body)


def summary_time(db_url: str, label: str, rows: int) -> None:
    bulk_fill(db_url, rows)
    with serve(db_url, 1) as (host, port):
        ms, summary = _median_get(f"http://{host}:{port}/v1/summary")
        chains_ms, chains = _median_get(f"http://{host}:{port}/v1/chains")
    total = summary["total"]
    print(
        f"{label:<10} summary over {total:,} reports (7 days): median {ms:.0f} ms of 7, "
        f"ratio vs target {TARGET_SUMMARY_MS / ms:.2f}x (< {TARGET_SUMMARY_MS:.0f} ms)"
    )
    pins = max((len(item["known_pins"]) for item in chains["items"]), default=0)
    print(
        f"{'':<10} top chains with known pins and issuers ({len(chains['items'])} chains, "
        f"up to {pins} known pins each): median {chains_ms:.0f} ms of 7"
    )


# -- databases ----------------------------------------------------------------------


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    name = f"pinset_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="pinset-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'collector.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="collector processes")
    parser.add_argument("--postgres", default=os.environ.get("PINSET_TEST_POSTGRES_URL"))
    parser.add_argument("--summary-rows", type=int, default=1_000_000)
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    args.count, args.summary_rows = scaled(args.count, 300), scaled(args.summary_rows, 1_000)
    print(
        f"collector ingest: {args.count:,} reports (10% duplicates), {args.concurrency} "
        f"connections, {args.workers} collector process(es), {os.cpu_count()} CPUs"
    )
    try:
        import httptools  # noqa: F401 - only probing which HTTP parser uvicorn will pick

        parser_name = "httptools"
    except ImportError:
        parser_name = "h11 (pure Python; uvicorn[standard] brings httptools)"
    print(f"uvicorn HTTP parser: {parser_name}")
    bodies = make_bodies(args.count)
    backends: list[tuple[str, Any]] = []
    if not args.no_sqlite:
        backends.append(("sqlite", sqlite_database))
    if args.postgres:
        backends.append(("postgresql", lambda: postgres_database(args.postgres)))
    for label, database in backends:
        with database() as url:
            ingest(url, label, bodies, args.concurrency, args.workers)
        if args.summary_rows:
            with database() as url:
                summary_time(url, label, args.summary_rows)


if __name__ == "__main__":
    main()

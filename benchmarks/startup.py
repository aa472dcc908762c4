"""Start-up cost of the CLI: `pinset pin FILE` vs `python -c "import cryptography.x509"`.

Both are whole processes on the same interpreter: the baseline is the least any command that
reads a certificate must pay (the interpreter plus cryptography's X.509 module), so the ratio
is what pinset adds on top. Each iteration runs one of each back to back, alternating which goes
first, so drift in the machine's speed hits both alike. The headline is the median of the
per-iteration ratios pinset/baseline of wall time; the target is at most 1.5. The ratio of
CPU time (user + system of the child, from ``getrusage``) is printed too: on a shared machine
it moves less than wall time, which includes waiting for a core.

    .venv/bin/python benchmarks/startup.py --runs 40
    .venv/bin/python benchmarks/startup.py --json
    .venv/bin/python benchmarks/startup.py -- check --help     # another command line
    PINSET_BENCH_QUICK=1 .venv/bin/python benchmarks/startup.py  # seconds (_quick.py)

The certificate is made on the spot in a temporary directory. ``pinset`` is the console script
next to the interpreter (what a user runs), or ``python -m pinset`` when there is none.
pinset's bytecode is compiled first, as ``pip install`` does for a wheel (with
``PYTHONDONTWRITEBYTECODE`` set, an editable checkout would otherwise be compiled from source
on every run, while cryptography's bytecode is already there).

Standard output is a pipe (what a script sees); ``--tty`` gives the command a pseudo-terminal
instead (what a person at a terminal sees: the chain table is drawn with rich).
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _quick import judged, scaled  # benchmarks/_quick.py, next to this script

TARGET = 1.5
BASELINE = [sys.executable, "-c", "import cryptography.x509"]


def _write_certificate(directory: Path) -> Path:
    """A self-signed EC certificate in PEM, like the one a user pins."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "startup.example")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path = directory / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _pinset() -> list[str]:
    script = Path(sys.executable).with_name("pinset")
    if script.exists():
        return [str(script)]
    found = shutil.which("pinset")
    return [found] if found else [sys.executable, "-m", "pinset"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _compile_pinset() -> None:
    """Write the bytecode of the pinset package that ``pinset`` will run, as pip would."""
    spec = importlib.util.find_spec("pinset")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pinset is not importable from this interpreter")
    for location in spec.submodule_search_locations:
        compileall.compile_dir(location, quiet=1)


def _once(argv: list[str], cwd: Path, tty: bool = False) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process (standard output a pipe, or a terminal)."""
    cpu = _cpu()
    if tty:
        import pty

        reader, writer = pty.openpty()
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, stdout=writer, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        os.close(writer)
        os.close(reader)
    else:
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True)
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed, _cpu() - cpu


def measure(args: list[str], runs: int, warmup: int, tty: bool = False) -> dict[str, Any]:
    """Run ``pinset ARGS`` and the baseline ``runs`` times each, interleaved; medians in ms."""
    _compile_pinset()
    with tempfile.TemporaryDirectory(prefix="pinset-startup-") as tmp:
        cwd = Path(tmp)
        cert = _write_certificate(cwd)
        command = [*_pinset(), *(a.replace("{cert}", str(cert)) for a in args)]
        for _ in range(warmup):  # fill the page cache
            _once(command, cwd, tty)
            _once(BASELINE, cwd, tty)
        ours: list[tuple[float, float]] = []
        base: list[tuple[float, float]] = []
        for index in range(runs):
            if index % 2:
                base.append(_once(BASELINE, cwd, tty))
                ours.append(_once(command, cwd, tty))
            else:
                ours.append(_once(command, cwd, tty))
                base.append(_once(BASELINE, cwd, tty))
    result: dict[str, Any] = {
        "command": ["pinset", *args],
        "baseline": ["python", *BASELINE[1:]],
        "runs": runs,
        "stdout": "terminal" if tty else "pipe",
        "target": TARGET,
    }
    for index, kind in enumerate(("wall", "cpu")):
        mine = [sample[index] for sample in ours]
        theirs = [sample[index] for sample in base]
        ratios = [o / b for o, b in zip(mine, theirs, strict=True)]
        result[kind] = {
            "pinset_ms": round(statistics.median(mine) * 1000, 1),
            "baseline_ms": round(statistics.median(theirs) * 1000, 1),
            "median_ratio": round(statistics.median(ratios), 3),
            "ratio_of_medians": round(statistics.median(mine) / statistics.median(theirs), 3),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="pairs of processes (default 40)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured pairs first")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--tty", action="store_true", help="standard output a pseudo-terminal")
    parser.add_argument(
        "args",
        nargs="*",
        default=["pin", "{cert}"],
        help="the pinset command line ({cert}: the certificate file); default: pin {cert}",
    )
    options = parser.parse_args(argv)
    runs, warmup = scaled(options.runs, 4), scaled(options.warmup, 1)
    result = measure(options.args, runs, warmup, options.tty)
    if options.json:
        print(json.dumps(result, indent=2))
        return 0
    shown = " ".join(a.replace("{cert}", "cert.pem") for a in result["command"])
    print(
        f"Python {platform.python_version()}, {result['runs']} interleaved pairs, medians, "
        f"standard output a {result['stdout']}"
    )
    print(f"pinset: {shown}; baseline: python -c 'import cryptography.x509'")
    for kind in ("wall", "cpu"):
        r = result[kind]
        ok = judged(r["median_ratio"] <= TARGET, "ok", "OVER")
        print(
            f"{kind:4} time: pinset {r['pinset_ms']} ms, baseline {r['baseline_ms']} ms; "
            f"median ratio {r['median_ratio']:.2f} (ratio of medians "
            f"{r['ratio_of_medians']:.2f}) [{ok} ≤ {TARGET}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``pinset pin``'s work, without click: build the results of the targets and print them.

Shared by the click command (``_pin.py``) and the core install's fallback (``_core.py``,
standard library only), so ``pinset pin`` prints the same text and JSON, and exits with the
same status, with or without the ``cli`` extra. Text goes to ``sys.stdout`` and
``sys.stderr`` as they are at call time; rich is used only when installed (coloured target
names in errors, a progress bar for long host lists at a terminal).

A target that names an existing path is a file (certificate, chain, key, CSR,
PKCS#7, PKCS#12), ``-`` is standard input; anything else is ``host[:port]``,
unless it looks like a file name (a ``/`` or a certificate file extension), which
is then reported as a missing file rather than looked up in DNS. Hosts are fetched
concurrently. A target that fails is reported on standard error and the batch
goes on; the exit status is 2 if any target failed (3 if every failure was a
network error).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinset.chain import load_chain
from pinset.cli._inputs import parse_host_port, read_secret
from pinset.cli._output import (
    certificate_rows,
    error_console,
    key_row,
    print_chain,
    print_json,
    short_name,
    show_progress,
)
from pinset.errors import ConfigError, NetworkError, PinsetError
from pinset.pins import spki_pin
from pinset.status import ExitStatus

if TYPE_CHECKING:  # only hosts need them: `pinset pin FILE` does not import asyncio or ssl
    import ssl

    from pinset.chain import FetchedChain

__all__ = ["DEFAULT_TIMEOUT", "looks_like_file", "pin_targets"]

#: Seconds per host (``--timeout``).
DEFAULT_TIMEOUT = 10.0

# Enough parallel handshakes to make a long host list quick, few enough to be polite.
_CONCURRENCY = 32

# Suffixes that name certificate and key files; none of them is a top-level domain.
_FILE_SUFFIXES = (
    ".pem", ".crt", ".cer", ".der", ".key", ".csr", ".p7b", ".p7c", ".p12", ".pfx", ".txt",
)  # fmt: skip
_FILE_HINT = "give an existing certificate, chain, key or CSR file, or a host as host[:port]"


@dataclass(slots=True)
class _Result:
    target: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: PinsetError | None = None
    title: str | None = None
    caption: str | None = None
    ct: dict[str, Any] | None = None  # the leaf's SCTs, when it has some and its issuer is known


def looks_like_file(target: str) -> bool:
    """Whether ``target`` is meant as a path (``./x``, ``certs/a``, ``leaf.pem``), not a host."""
    if "://" in target:
        return False
    return "/" in target or "\\" in target or target.lower().endswith(_FILE_SUFFIXES)


def _leaf_scts(chain: Any, log_list: str | None) -> dict[str, Any] | None:
    """The leaf's embedded SCTs checked now against ``log_list``, if it has SCTs and an issuer.

    ``chain`` is leaf first; its second member counts as the issuer only if it signed
    the leaf. ``pinset.ct`` is imported only for a leaf that embeds SCTs.
    """
    if len(chain) < 2 or not any(
        ext.oid.dotted_string == _SCT_LIST_OID for ext in chain[0].extensions
    ):
        return None
    try:
        chain[0].verify_directly_issued_by(chain[1])
    except Exception:  # not its issuer: the SCTs cannot be checked
        return None
    import datetime as dt

    from pinset.ct import MAX_LIST_AGE, check_chain, load_log_list

    logs = load_log_list(log_list)
    now = dt.datetime.now(dt.timezone.utc)
    result = check_chain(chain[:2], logs, now=now)
    stale = logs.age_warning(now, MAX_LIST_AGE)
    return {
        **result.to_dict(),
        "log_list": logs.source,
        "log_list_date": None if logs.timestamp is None else logs.timestamp.strftime("%Y-%m-%d"),
        "log_list_stale": stale is not None,
    }


_SCT_LIST_OID = "1.3.6.1.4.1.11129.2.4.2"  # RFC 6962 3.3, the embedded SCT list


def _file_result(target: str, password: bytes | None, log_list: str | None = None) -> _Result:
    if target == "-":
        loaded = load_chain(sys.stdin.buffer.read(), password=password, source="<stdin>")
    elif not Path(target).exists():
        raise ConfigError("no such file", source=target, hint=_FILE_HINT)
    else:
        loaded = load_chain(target, password=password)
    rows = certificate_rows(loaded.certificates)
    extra = [(key, "key") for key in loaded.keys] + [(csr, "csr") for csr in loaded.csrs]
    for obj, role in extra:
        row = key_row(obj, role)
        row["position"] = len(rows)
        rows.append(row)
    ct = _leaf_scts(loaded.certificates, log_list)
    return _Result(target=target, rows=rows, title=target, ct=ct)


def _host_result(target: str, fetched: FetchedChain, log_list: str | None = None) -> _Result:
    rows = certificate_rows(fetched.served)
    if fetched.verified is None:
        caption = f"not verified: {fetched.verify_error}"
    else:
        anchor = fetched.verified[-1]
        how = "served" if anchor in fetched.served else "from the trust store"
        name = short_name(anchor.subject.rfc4514_string())
        caption = f"verified to {name} ({how}), whose pin is\n  {spki_pin(anchor)}"
    title = f"{target} ({fetched.tls_version}, {fetched.cipher})"
    ct = None if fetched.verified is None else _leaf_scts(fetched.verified, log_list)
    return _Result(target=target, rows=rows, title=title, caption=caption, ct=ct)


async def _fetch_all(
    hosts: list[tuple[int, str]],
    results: list[_Result | None],
    *,
    server_name: str | None,
    timeout: float,
    context: ssl.SSLContext,
    done: Callable[[], None] = lambda: None,
    log_list: str | None = None,
) -> None:
    import asyncio

    from pinset.chain import async_fetch_chain

    gate = asyncio.Semaphore(_CONCURRENCY)

    async def one(index: int, target: str) -> None:
        async with gate:
            try:
                host, port = parse_host_port(target)
                fetched = await async_fetch_chain(
                    host, port, server_name=server_name, timeout=timeout, context=context
                )
                results[index] = _host_result(target, fetched, log_list)
            except PinsetError as exc:
                results[index] = _Result(target=target, error=exc)
            done()

    await asyncio.gather(*(one(index, target) for index, target in hosts))


def pin_targets(
    targets: Sequence[str],
    *,
    server_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cafile: str | None = None,
    password_file: str | None = None,
    log_list: str | None = None,
    as_json: bool = False,
) -> int:
    """Print the pins of ``targets`` (files, ``-``, hosts) as text or JSON; the exit status.

    The keywords are ``pinset pin``'s options. Every target is tried; failures are printed
    on standard error under their target.
    """
    password = read_secret(password_file)
    results: list[_Result | None] = [None] * len(targets)
    hosts: list[tuple[int, str]] = []
    for index, target in enumerate(targets):
        if target == "-" or Path(target).exists() or looks_like_file(target):
            try:
                results[index] = _file_result(target, password, log_list)
            except PinsetError as exc:
                results[index] = _Result(target=target, error=exc)
        else:
            hosts.append((index, target))
    if hosts:
        _fetch_hosts(
            hosts,
            results,
            server_name=server_name,
            timeout=timeout,
            cafile=cafile,
            log_list=log_list,
        )
    done = [r for r in results if r is not None]
    _print(done, as_json)
    failures = [r.error for r in done if r.error is not None]
    if not failures:
        return int(ExitStatus.OK)
    if all(isinstance(e, NetworkError) for e in failures):
        return int(ExitStatus.NETWORK)
    return int(ExitStatus.USAGE)


def _fetch_hosts(
    hosts: list[tuple[int, str]],
    results: list[_Result | None],
    *,
    server_name: str | None,
    timeout: float,
    cafile: str | None,
    log_list: str | None = None,
) -> None:
    """Fetch every host concurrently into ``results`` (asyncio is imported only here)."""
    import asyncio

    from pinset.chain import verifying_context

    context = verifying_context(cafile)
    with _progress(len(hosts)) as advance:
        asyncio.run(
            _fetch_all(
                hosts,
                results,
                server_name=server_name,
                timeout=timeout,
                context=context,
                done=advance,
                log_list=log_list,
            )
        )


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[], None]]:
    """A transient progress bar on stderr for long host lists, only for a person at a terminal."""
    if total < 2 or not show_progress():
        yield lambda: None
        return
    try:
        from rich.progress import Progress
    except ModuleNotFoundError:  # the core install: no bar, the same result
        yield lambda: None
        return

    with Progress(console=error_console(), transient=True) as bar:
        task = bar.add_task("fetching chains", total=total)
        yield lambda: bar.advance(task)


def _print_errors(failed: list[tuple[str, PinsetError]]) -> None:
    try:
        from rich.markup import escape
    except ModuleNotFoundError:  # the core install (no 'cli' extra): the same text, no colour
        for target, error in failed:
            print(f"{target}:\n{error.diagnostics()}", file=sys.stderr)
        return
    err = error_console()
    for target, error in failed:
        err.print(f"[bold red]{escape(target)}[/]:", highlight=False)
        err.print(error.diagnostics(), markup=False, highlight=False)


def _print(results: list[_Result], as_json: bool) -> None:
    failed = [(result.target, result.error) for result in results if result.error is not None]
    if failed:
        _print_errors(failed)
    if as_json:
        data: list[dict[str, Any]] = []
        for result in results:
            entry: dict[str, Any] = {"target": result.target, "certificates": result.rows}
            if result.error is not None:
                entry["error"] = str(result.error)
            if result.ct is not None:
                entry["ct"] = result.ct
            data.append(entry)
        print_json(data)
        return
    first = True
    for result in results:
        if result.error is None:
            if not first:
                print(file=sys.stdout)
            first = False
            print_chain(result.rows, title=result.title, caption=result.caption)
            if result.ct is not None:
                _print_scts(result.ct)


def _print_scts(ct: dict[str, Any]) -> None:
    """The leaf's SCTs under its chain: log, operator, time, signature; then the verdict."""
    stale = "; older than 70 days" if ct["log_list_stale"] else ""
    print(f"Leaf SCTs (log list {ct['log_list']}, {ct['log_list_date'] or 'undated'}{stale}):")
    for sct in ct["scts"]:
        log = f"{sct['log']} ({sct['operator']})" if sct["log"] else f"unknown log {sct['log_id']}"
        state = sct["log_state"] or "-"
        print(f"  {sct['timestamp']}  {sct['signature']:<11}  {state:<9}  {log}")
    verdict = "meets the CT policy" if ct["compliant"] else f"does not meet it ({ct['reason']})"
    print(f"  CT: {verdict}")

"""``pinset rotate check``: would the shipped pins accept a new certificate or key?"""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

import click
from click.decorators import FC
from cryptography import x509

from pinset._dates import parse_iso_date
from pinset.audit import (
    Adoption,
    Checks,
    Endpoint,
    Plan,
    RotationVerdict,
    Stage,
    Subject,
    adoption_from_json,
    check_rotation,
    plan_rotation,
    read_subjects,
)
from pinset.chain import load_chain, order_chain
from pinset.cli._app import SectionedCommand
from pinset.cli._inputs import load_key_file, parse_host_port
from pinset.cli._options import (
    cafile_option,
    json_option,
    now_option,
    parse_now,
    password_file_option,
    policy_option,
    timeout_option,
)
from pinset.cli._output import console, print_json
from pinset.errors import ChainError, ConfigError, NetworkError
from pinset.hosts import canonical_host
from pinset.pins import Pin, spki_pin
from pinset.policy import DomainRule
from pinset.status import ExitStatus

__all__ = ["group"]


@click.group("rotate")
def group() -> None:
    """Plan and check a key rotation.

    Before a pinned server gets a new certificate or key, 'pinset rotate check'
    tells whether the apps and policies already shipped would still accept it.
    """


def _new_chain(cert: str | None, chain_file: str | None) -> tuple[x509.Certificate, ...]:
    if cert is None:
        if chain_file is not None:
            raise ConfigError("--chain-file needs --new-cert", key="--chain-file")
        return ()
    leaf = load_chain(cert).certificates
    if not leaf:
        raise ChainError(
            "no certificate in the file", source=cert, hint="give the new server certificate"
        )
    extra = load_chain(chain_file).certificates if chain_file else ()
    return order_chain([leaf[0], *leaf[1:], *extra])


def _key_pin(path: str | None, password_file: str | None) -> Pin | None:
    if path is None:
        return None
    loaded = load_key_file(path, password_file)
    if loaded.keys:
        return spki_pin(loaded.keys[0])
    if loaded.csrs:
        return spki_pin(loaded.csrs[0])
    raise ChainError("no key or CSR in the file", source=path, hint="give the new key (or its CSR)")


def _as_dict(verdict: RotationVerdict) -> dict[str, object]:
    return {
        "source": verdict.source,
        "domain": verdict.domain,
        "safe": verdict.safe,
        "reason": verdict.reason,
        "matched_pin": str(verdict.matched) if verdict.matched else None,
        "matched_by": verdict.matched_by,
        "next_step": verdict.next_step,
        "line": verdict.line,
    }


_EPILOG = """\b
Examples:
  pinset rotate check pinset.toml --new-cert new.pem --chain-file intermediates.pem
  pinset rotate check pinset.toml --new-key backup.csr
  pinset rotate check app-release.apk App.ipa --new-cert new.pem --domain api.example.com
  pinset rotate check pinset.toml --new-key backup.key --password-file pass.txt --json
  pinset rotate check pinset.toml --new-pin sha256/... --domain api.example.com

\b
Exit status: 0 every judged rule accepts the switch, 1 one would lock users
out, 2 a file cannot be read or no pinned rule covers --domain."""


def new_key_options(function: FC) -> FC:
    """--new-key, --new-cert, --new-pin and --password-file, as check and plan take them."""
    for option in reversed(
        (
            click.option(
                "--new-key", type=click.Path(dir_okay=False), help="The new key (or its CSR)."
            ),
            click.option(
                "--new-cert", type=click.Path(dir_okay=False), help="The new server certificate."
            ),
            click.option("--new-pin", metavar="PIN", help="The new key's pin (sha256/...)."),
            password_file_option(
                help="Password of an encrypted --new-key (first line), instead of a prompt."
            ),
        )
    ):
        function = option(function)
    return function


@group.command(
    "check",
    cls=SectionedCommand,
    epilog=_EPILOG,
    sections={
        "The new certificate or key": [
            "new_cert",
            "chain_file",
            "new_key",
            "new_pin",
            "password_file",
        ],
        "Scope": ["domains", "now_text"],
        "Output": ["as_json"],
    },
)
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@new_key_options
@click.option(
    "--chain-file",
    type=click.Path(dir_okay=False),
    help="Intermediates the server will send with the new certificate.",
)
@click.option("--domain", "domains", multiple=True, help="Only judge the rules covering this name.")
@now_option(help="Judge as of this date (UTC).")
@json_option(help="Print the verdicts as JSON.")
def check(
    targets: tuple[str, ...],
    new_cert: str | None,
    chain_file: str | None,
    new_key: str | None,
    new_pin: str | None,
    password_file: str | None,
    domains: tuple[str, ...],
    now_text: str | None,
    as_json: bool,
) -> int:
    """Would a server switching to this certificate or key still be accepted?

    Judges every pinned rule of each TARGET (policies, platform configs, APKs,
    IPAs) against the new server certificate (--new-cert, with --chain-file) or
    the new key (--new-key: a private key, public key or CSR; or --new-pin).
    """
    if sum(v is not None for v in (new_cert, new_key, new_pin)) != 1:
        raise ConfigError(
            "give exactly one of --new-cert, --new-key and --new-pin",
            key="--new-cert",
            hint="pinset rotate check pinset.toml --new-cert new.pem [--chain-file chain.pem]",
        )
    subjects, unreadable, _names = read_subjects(targets)
    for item in unreadable:
        message = (
            item.message if item.message.startswith("cannot") else f"cannot read: {item.message}"
        )
        raise ConfigError(message, source=item.target, hint=item.hint)
    for subject in subjects:
        if subject.error is not None:
            err = subject.error
            raise ConfigError(err.message, source=err.source, line=err.line, hint=err.fix)
    verdicts = check_rotation(
        subjects,
        now=parse_now(now_text),
        new_chain=_new_chain(new_cert, chain_file),
        new_key_pin=Pin.parse(new_pin) if new_pin else _key_pin(new_key, password_file),
        domains=domains,
    )
    if not verdicts:
        raise ConfigError(
            "no pinned rule to judge", hint="check the targets carry pins (and --domain)"
        )
    safe = all(v.safe for v in verdicts)
    if as_json:
        print_json({"safe": safe, "verdicts": [_as_dict(v) for v in verdicts]})
        return int(ExitStatus.OK if safe else ExitStatus.CHECK_FAILED)
    out = console()
    for v in verdicts:
        where = f"{Path(v.source).name}:{v.line}" if v.line else Path(v.source).name
        mark = "[green]safe[/green]  " if v.safe else "[bold red]UNSAFE[/bold red]"
        out.print(f"{mark} {v.domain} ({where}): {v.reason}", highlight=False, soft_wrap=True)
        if v.next_step:
            out.print(f"        next step: {v.next_step}", highlight=False, soft_wrap=True)
    return int(ExitStatus.OK if safe else ExitStatus.CHECK_FAILED)


def _new_pin(
    new_key: str | None, new_cert: str | None, new_pin: str | None, password_file: str | None
) -> tuple[Pin, tuple[str, ...]]:
    """The new key's pin, and the options that name it in the checks' command lines."""
    given = [(o, v) for o, v in (("--new-key", new_key), ("--new-cert", new_cert)) if v]
    if new_pin:
        given.append(("--new-pin", new_pin))
    if len(given) != 1:
        raise ConfigError(
            "give exactly one of --new-key, --new-cert and --new-pin",
            key="--new-key",
            hint="pinset rotate plan api.example.com --policy pinset.toml --new-key new.key",
        )
    option, value = given[0]
    if option == "--new-pin":
        return Pin.parse(value), given[0]
    if option == "--new-cert":
        return spki_pin(_new_chain(value, None)[0]), given[0]
    pin = _key_pin(value, password_file)
    assert pin is not None
    return pin, (option, value, *(("--password-file", password_file) if password_file else ()))


def _pinned_rules(subjects: list[Subject], hosts: list[str]) -> list[DomainRule]:
    """The most specific rule of each host, once each; a host no rule pins is an error."""
    found: list[DomainRule] = []
    for host in hosts:
        rules = [
            rule
            for subject in subjects
            if subject.imported is not None
            for rule in [subject.imported.policy.rule_for(host)]
            if rule is not None
        ]
        if not rules:
            raise ConfigError(
                f"no pinned rule covers {host}",
                key="TARGET",
                hint="give the servers the policy or app pins (host or host:port)",
            )
        # two configs of one app may pin the same name differently: each is judged
        found += [rule for rule in rules if rule not in found]
    return found


def _live_chains(
    endpoints: list[Endpoint], cafile: str | None, timeout: float
) -> dict[str, tuple[x509.Certificate, ...]]:
    """The chain each target serves now; an unreachable target is a network error."""
    from pinset.audit._live import fetch_chains

    chains = {}
    for host, live in fetch_chains(endpoints, timeout=timeout, cafile=cafile).items():
        if live.error is not None or not live.certificates:
            raise NetworkError(
                f"cannot fetch the chain of {host}: {live.error or 'no certificate'}",
                source=live.origin,
                hint="the plan starts from the key the server uses now; check the name and port",
            )
        chains[host] = live.certificates
    return chains


def _ask_collector(url: str, token: str, app_id: str | None, pin_set_version: str) -> Adoption:
    """``GET /v1/adoption`` of the collector; a network error when it cannot answer."""
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(
            f"--collector {url!r} is not an http(s) URL",
            key="--collector",
            hint="write --collector https://pins.example.com",
        )
    query = urllib.parse.urlencode({"app_id": app_id} if app_id else {})
    address = url.rstrip("/") + "/v1/adoption" + (f"?{query}" if query else "")
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        address, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    hint = "check --collector and --token, or leave them out to plan with --update-days"
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            body = response.read(1_000_000)
    except urllib.error.HTTPError as exc:
        raise NetworkError(
            f"the collector answered {exc.code} {exc.reason}", source=address, hint=hint
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NetworkError(
            f"cannot reach the collector: {reason}", source=address, hint=hint
        ) from None
    try:
        return adoption_from_json(json.loads(body), pin_set_version)
    except ValueError as exc:
        raise NetworkError(
            f"the collector's adoption answer is not usable: {exc}", source=address, hint=hint
        ) from None


def _start_date(text: str | None) -> dt.date | None:
    """``--start``: a calendar date (yyyy-MM-dd)."""
    if text is None:
        return None
    day = parse_iso_date(text)
    if day is None:
        raise ConfigError(
            f"--start {text!r} is not a date", key="--start", hint="write --start 2026-12-07"
        )
    return day


def _endpoints(targets: tuple[str, ...], connects: tuple[str, ...]) -> list[Endpoint]:
    """Each TARGET's name, and where to dial it (``--connect HOST=ADDR[:PORT]``)."""
    dial: dict[str, tuple[str, int]] = {}
    for value in connects:
        name, sep, address = value.partition("=")
        if not sep or not name.strip() or not address.strip():
            raise ConfigError(
                f"--connect {value!r} is not HOST=ADDR[:PORT]",
                key="--connect",
                hint="write --connect api.example.com=127.0.0.1:8443",
            )
        dial[canonical_host(name.strip())] = parse_host_port(address.strip())
    endpoints = []
    for target in targets:
        host, port = parse_host_port(target)
        name = canonical_host(host)
        address, dial_port = dial.get(name, (host, port))
        endpoints.append(Endpoint(name, address, dial_port))
    return endpoints


def _checks(
    source: str,
    new: tuple[str, ...],
    endpoints: list[Endpoint],
    connects: tuple[str, ...],
    cafile: str | None,
    replan: list[str],
    collector: str | None,
) -> Checks:
    """The command lines the stages name, ready to paste."""
    domains = [a for e in endpoints for a in ("--domain", e.host)]
    hosts = [a for e in endpoints if e.port != 443 for a in ("--host", f"{e.host}:{e.port}")]
    trust = [a for c in connects for a in ("--connect", c)]
    trust += ["--cafile", cafile] if cafile else []
    url = shlex.quote(collector) if collector else '"$COLLECTOR_URL"'
    return Checks(
        rotate_check=shlex.join(["pinset", "rotate", "check", source, *new, *domains]),
        adoption=shlex.join(replan) + f' --collector {url} --token "$COLLECTOR_TOKEN"',
        audit_live=shlex.join(["pinset", "audit", source, "--live", *hosts, *trust]),
        audit=shlex.join(["pinset", "audit", source]),
        next_backup=shlex.join(
            ["pinset", "rotate", "check", source, "--new-key", "next-backup.key", *domains]
        ),
    )


def _replan(
    targets: tuple[str, ...], source: tuple[str, str], new: tuple[str, ...], extra: list[str]
) -> list[str]:
    return ["pinset", "rotate", "plan", *targets, *source, *new, *extra]


def _stage_dict(stage: Stage) -> dict[str, object]:
    return {
        "stage": stage.number,
        "title": stage.title,
        "date": stage.date.isoformat(),
        "check": stage.check,
        "done": stage.done,
        "detail": stage.detail or None,
    }


_PLAN_EPILOG = """\b
Examples:
  pinset rotate plan api.example.com --policy pinset.toml --new-key backup.csr
  pinset rotate plan api.example.com --app app-release.apk --new-cert new.pem \\
      --share 0.95 --update-days 45 --start 2026-12-01
  pinset rotate plan api.example.com --policy pinset.toml --new-pin sha256/... \\
      --collector https://pins.example.com --token "$TOKEN" --pin-set-version 8 --json

\b
Exit status: 0 a plan is printed, 2 the plan cannot work (the new key is the
current one, the pins expired, no rule pins a target) or an input is wrong,
3 a target or the collector cannot be reached."""


@group.command(
    "plan",
    cls=SectionedCommand,
    epilog=_PLAN_EPILOG,
    sections={
        "What is pinned": ["policy_path", "app"],
        "The new key": ["new_key", "new_cert", "new_pin", "password_file"],
        "Schedule": ["share", "update_days", "start_text", "now_text"],
        "Adoption (pinset collector)": ["collector", "token", "app_id", "pin_set_version"],
        "Live chains": ["connects", "cafile", "timeout"],
        "Output": ["as_json"],
    },
)
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@policy_option(required=False, help="The pinset policy the clients enforce.")
@click.option("--app", type=click.Path(dir_okay=False), help="The shipped app (APK or IPA).")
@new_key_options
@click.option(
    "--share",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.9,
    show_default=True,
    help="Share of installs that must carry the new pins before the switch.",
)
@click.option(
    "--update-days",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Days for that share to update (the estimate without a collector).",
)
@click.option(
    "--start",
    "start_text",
    metavar="DATE",
    help="Day of the release that carries the new pin (default: today).",
)
@now_option(help="Plan as of this date (UTC).")
@click.option("--collector", metavar="URL", help="A pinset collector to ask for adoption.")
@click.option("--token", help="The collector's read token.")
@click.option("--app-id", help="The app whose adoption the collector reports.")
@click.option(
    "--pin-set-version",
    metavar="V",
    help="The first pin-set version that carries the new pin (with --collector).",
)
@click.option(
    "--connect",
    "connects",
    multiple=True,
    metavar="HOST=ADDR[:PORT]",
    help="Fetch HOST's chain from ADDR:PORT (SNI and name checks stay HOST).",
)
@cafile_option()
@timeout_option()
@json_option(help="Print the stages as JSON.")
def plan(
    targets: tuple[str, ...],
    policy_path: str | None,
    app: str | None,
    new_key: str | None,
    new_cert: str | None,
    new_pin: str | None,
    password_file: str | None,
    share: float,
    update_days: int,
    start_text: str | None,
    now_text: str | None,
    collector: str | None,
    token: str | None,
    app_id: str | None,
    pin_set_version: str | None,
    connects: tuple[str, ...],
    cafile: str | None,
    timeout: float,
    as_json: bool,
) -> int:
    """The staged plan, with dates, for switching TARGET servers to a new key.

    TARGET is a server (host or host:port) whose chain is fetched now. The
    pins are those of --policy or of the shipped --app; the new key is
    --new-key (a private key, public key or CSR), --new-cert or --new-pin.
    """
    if (policy_path is None) == (app is None):
        raise ConfigError(
            "give exactly one of --policy and --app",
            key="--policy",
            hint="pinset rotate plan api.example.com --policy pinset.toml --new-key new.key",
        )
    if collector is not None and (token is None or pin_set_version is None):
        raise ConfigError(
            "--collector needs --token and --pin-set-version",
            key="--collector",
            hint="--pin-set-version is the first pin-set version that carries the new pin",
        )
    source = ("--policy", policy_path) if policy_path else ("--app", str(app))
    pin, new = _new_pin(new_key, new_cert, new_pin, password_file)
    now = parse_now(now_text)
    start = _start_date(start_text)
    subjects, unreadable, _names = read_subjects([source[1]])
    for item in unreadable:
        raise ConfigError(item.message, source=item.target, hint=item.hint)
    for subject in subjects:
        if subject.error is not None:
            err = subject.error
            raise ConfigError(err.message, source=err.source, line=err.line, hint=err.fix)
    endpoints = _endpoints(targets, connects)
    rules = _pinned_rules(subjects, [e.host for e in endpoints])
    adoption = (
        _ask_collector(collector, str(token), app_id, str(pin_set_version))
        if collector is not None
        else None
    )
    live = _live_chains(endpoints, cafile, timeout)
    extra = ["--pin-set-version", pin_set_version or "VERSION"]
    extra += ["--app-id", app_id] if app_id else []
    extra += [a for c in connects for a in ("--connect", c)]
    extra += ["--cafile", cafile] if cafile else []
    checks = _checks(
        source[1], new, endpoints, connects, cafile, _replan(targets, source, new, extra), collector
    )
    result = plan_rotation(
        rules, live, pin, checks, now=now, start=start, share=share,
        update_days=update_days, adoption=adoption,
    )  # fmt: skip
    if as_json:
        print_json(
            {
                "new_pin": str(result.new_pin),
                "old_pins": [str(p) for p in result.old_pins],
                "domains": list(result.domains),
                "warnings": list(result.warnings),
                "stages": [_stage_dict(s) for s in result.stages],
            }
        )
        return int(ExitStatus.OK)
    _print_plan(result)
    return int(ExitStatus.OK)


def _print_plan(result: Plan) -> None:
    out = console()
    marks = {True: "[green]done[/green]", False: "[bold]todo[/bold]", None: "?   "}
    out.print(f"Rotation of {', '.join(result.domains)} to {result.new_pin}", highlight=False)
    for stage in result.stages:
        out.print(
            f"{stage.number}. {stage.date.isoformat()}  {marks[stage.done]}  {stage.title}",
            highlight=False,
            soft_wrap=True,
        )
        if stage.detail:
            out.print(f"   {stage.detail}", highlight=False, soft_wrap=True)
        out.print(f"   check: {stage.check}", highlight=False, soft_wrap=True, markup=False)
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)

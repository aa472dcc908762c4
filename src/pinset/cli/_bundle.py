"""``pinset bundle sign | verify | export``: signed pin-set bundles from the command line.

``sign`` turns a policy into a bundle signed with an offline Ed25519 or ECDSA P-256
key; ``verify`` says whether an app holding the trusted public key (and, with
``--policy``, its embedded policy) would apply it: exit 0 yes, 1 refused; ``export``
renders the embedded policy with a verified bundle applied in a platform's format.
"""

from __future__ import annotations

import datetime as dt
import sys
import warnings
from collections.abc import Callable

import click
from click.decorators import FC
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pinset import formats
from pinset.cli._app import SectionedCommand
from pinset.cli._files import read_input, write_atomically
from pinset.cli._inputs import read_password
from pinset.cli._options import (
    format_option,
    json_option,
    now_option,
    output_option,
    parse_now,
    password_file_option,
)
from pinset.cli._output import print_json
from pinset.errors import ConfigError
from pinset.pins import spki_pin
from pinset.policyfile import load as load_policy
from pinset.status import ExitStatus
from pinset.updates import (
    BundleError,
    BundleStore,
    load_trusted_keys,
    sign_bundle,
    verify_bundle,
)
from pinset.updates._signing import PrivateKey, algorithm_of

__all__ = ["group"]


@click.group("bundle")
def group() -> None:
    """Sign, verify and export pin-set bundles (pin updates without an app release)."""


def _signing_key(path: str, password_file: str | None) -> PrivateKey:
    data = read_input(path)
    try:
        try:
            key = serialization.load_pem_private_key(data, password=None)
            click.echo(
                f"warning: {path} is not encrypted; keep signing keys encrypted and offline",
                err=True,
            )
        except TypeError:  # encrypted: now ask for the password
            password = read_password(password_file, confirm=False, prompt=f"Password for {path}")
            key = serialization.load_pem_private_key(data, password=password)
    except ValueError:
        raise ConfigError(
            "not a PEM private key, or the password is wrong",
            source=path,
            hint="give the bundle signing key (pinset keygen --type ed25519 --out signing.key)",
        ) from None
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        raise ConfigError(
            f"a bundle key must be Ed25519 or ECDSA P-256, not {type(key).__name__}",
            source=path,
            hint="make one with: pinset keygen --type ed25519 --out signing.key",
        )
    try:
        algorithm_of(key)  # an EC key on another curve than P-256
    except ConfigError as exc:
        raise exc.with_location(source=path) from None
    return key


_SIGN_EPILOG = """\b
Example:
  pinset bundle sign pinset.toml --key signing.key --version 2 --expires-in 30 \\
      --app-id com.example.app -o bundle.json

\b
Exit status: 0 written, 2 a bad policy, key, password or option."""


@group.command(
    "sign",
    cls=SectionedCommand,
    epilog=_SIGN_EPILOG,
    sections={
        "Bundle": ["keys", "password_file", "version", "expires_in", "app_id", "disable"],
        "Signing keys": ["next_signing_keys"],
        "Output": ["output", "now_text", "as_json"],
    },
)
@click.argument("policy", type=click.Path(dir_okay=False))
@click.option(
    "--key",
    "keys",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Signing key (PEM, Ed25519 or P-256); repeat to sign with several.",
)
@password_file_option(help="Read the signing key's password from the first line of this file.")
@click.option(
    "--version",
    "version",
    required=True,
    type=click.IntRange(min=1),
    help="Bundle version: greater than every bundle the apps have applied.",
)
@click.option(
    "--expires-in",
    required=True,
    type=click.IntRange(min=1),
    metavar="DAYS",
    help="Days until the bundle expires.",
)
@click.option("--app-id", help="The app the bundle is for (its package or bundle id).")
@click.option(
    "--disable",
    multiple=True,
    metavar="DOMAIN",
    help="Kill switch: stop enforcing this domain's pins (repeatable).",
)
@click.option(
    "--next-signing-key",
    "next_signing_keys",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="PUB.pem",
    help="A public key later bundles may be signed by (repeatable; the whole set, "
    "old keys included if they stay). A new key must also sign this bundle (--key).",
)
@output_option(help="Write the bundle here (default: standard output).")
@now_option(help="Issue the bundle at this date or time instead of now (UTC).")
@json_option(help="Print a summary as JSON (with -o).")
def sign_command(
    policy: str,
    keys: tuple[str, ...],
    password_file: str | None,
    version: int,
    expires_in: int,
    app_id: str | None,
    disable: tuple[str, ...],
    next_signing_keys: tuple[str, ...],
    output: str | None,
    now_text: str | None,
    as_json: bool,
) -> int:
    """Sign the pinned domains of POLICY as a bundle."""
    rules = load_policy(policy)
    signers = [_signing_key(key, password_file) for key in keys]
    issued = parse_now(now_text).replace(microsecond=0)
    expires = issued + dt.timedelta(days=expires_in)
    data = sign_bundle(
        rules,
        signers,
        version=version,
        issued=issued,
        expires=expires,
        app_id=app_id,
        disable=disable,
        next_signing_keys=next_signing_keys or None,
    )
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
        return int(ExitStatus.OK)
    write_atomically(output, data)
    domains = [rule.pattern for rule in rules.rules if not rule.exclude]
    signed_by = [str(spki_pin(signer)) for signer in signers]
    later = [str(pin) for pin in load_trusted_keys(next_signing_keys)] if next_signing_keys else []
    summary = {
        "output": output,
        "version": version,
        "app_id": app_id,
        "issued": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key": signed_by[0],
        "keys": signed_by,
        "domains": domains,
        "disable": sorted(disable),
        "next_signing_keys": later or None,
    }
    if as_json:
        print_json(summary)
    else:
        click.echo(
            f"wrote {output}: version {version}, {len(domains)} domain(s), "
            f"expires {summary['expires']}, signed by {', '.join(signed_by)}"
        )
        if later:
            click.echo(f"  later bundles: signed by {', '.join(later)}")
    return int(ExitStatus.OK)


_VERIFY_EPILOG = """\b
Example:
  pinset bundle verify bundle.json --trusted-key signing.pub --policy pinset.toml \\
      --app-id com.example.app --store state/

\b
Exit status: 0 the bundle would be applied, 1 refused (the reason is printed),
2 a bad key, policy or option."""


def _checks(*, policy_required: bool, policy_help: str, store_help: str) -> Callable[[FC], FC]:
    """--trusted-key, --policy, --store, --app-id and --now: what verify and export check by."""
    options = (
        click.option(
            "--trusted-key",
            "trusted_keys",
            multiple=True,
            required=True,
            type=click.Path(dir_okay=False),
            help="Public key (PEM) a bundle may be signed by (repeatable).",
        ),
        click.option(
            "--policy",
            "policy_path",
            required=policy_required,
            type=click.Path(dir_okay=False),
            help=policy_help,
        ),
        click.option("--store", type=click.Path(file_okay=False), help=store_help),
        click.option("--app-id", help="Refuse a bundle for another app."),
        now_option(help="Check at this date or time instead of now (UTC)."),
    )

    def decorate(function: FC) -> FC:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


@group.command(
    "verify",
    cls=SectionedCommand,
    epilog=_VERIFY_EPILOG,
    sections={
        "Checks": ["trusted_keys", "policy_path", "store", "app_id", "now_text"],
        "Output": ["save", "as_json"],
    },
)
@click.argument("bundle", type=click.Path(dir_okay=False))
@_checks(
    policy_required=False,
    policy_help="The app's embedded policy: what a bundle may change.",
    store_help="Bundle store directory: refuse versions not newer than the stored one.",
)
@click.option("--save", is_flag=True, help="Keep a valid bundle in --store.")
@json_option(help="Print the result as JSON.")
def verify_command(
    bundle: str,
    trusted_keys: tuple[str, ...],
    policy_path: str | None,
    store: str | None,
    app_id: str | None,
    now_text: str | None,
    save: bool,
    as_json: bool,
) -> int:
    """Check BUNDLE as an app would: exit 0 if it would apply it, 1 if not."""
    if save and store is None:
        raise click.UsageError("--save needs --store")
    data = read_input(bundle)
    embedded = None if policy_path is None else load_policy(policy_path)
    now = parse_now(now_text)
    if store is not None and save:
        result = BundleStore(store).offer(
            data, trusted_keys=trusted_keys, now=now, embedded=embedded, app_id=app_id
        )
    else:
        stored = None if store is None else BundleStore(store)
        result = verify_bundle(
            data,
            trusted_keys=trusted_keys if stored is None else stored.trusted_keys(trusted_keys),
            now=now,
            embedded=embedded,
            stored_version=None if stored is None else stored.version(),
            app_id=app_id,
        )
    if as_json:
        print_json(result.to_json())
    elif result.valid:
        shown = result.to_json()
        click.echo(
            f"valid: version {result.version}, app {result.app_id or 'any'}, "
            f"expires {shown['expires']}" + (", saved" if save else "")
        )
        for change in shown["changes"]:
            extra = change.get("pins") or change.get("expiration")
            detail = f" {', '.join(extra) if isinstance(extra, list) else extra}" if extra else ""
            click.echo(f"  {change['domain']}: {change['change']}{detail}")
        if result.signing_keys is not None:
            click.echo(f"  later bundles: signed by {', '.join(shown['signing_keys'])}")
    else:
        click.echo(f"refused ({result.reason}): {result.detail}")
    return int(ExitStatus.OK if result.valid else ExitStatus.CHECK_FAILED)


_EXPORT_EPILOG = """\b
Example:
  pinset bundle export bundle.json --trusted-key signing.pub --policy pinset.toml \\
      --format trustkit -o TrustKit.plist

\b
Only some platforms take pins at run time: TrustKit (iOS, macOS) takes the
TSKConfiguration dictionary in code, and pinset in Python takes the bundle itself.
An Android network security config, a TrustKit-Android config and App Transport
Security's Info.plist are compiled or signed into the app, and OkHttp code is
compiled: for those the output is what the next release must ship (a note says so).

\b
Exit status: 0 written, 1 the bundle is refused (the reason is printed), 2 a bad key,
policy or option, or a policy the format cannot express."""


@group.command(
    "export",
    cls=SectionedCommand,
    epilog=_EXPORT_EPILOG,
    sections={
        "Checks": ["trusted_keys", "policy_path", "store", "app_id", "now_text"],
        "Output": ["fmt", "output", "as_json"],
    },
)
@click.argument("bundle", type=click.Path(dir_okay=False))
@_checks(
    policy_required=True,
    policy_help="The app's embedded policy, which the bundle changes.",
    store_help="Bundle store directory: its version and signing keys are the floor.",
)
@format_option(
    required=True,
    help="Target format: " + ", ".join([*formats.FORMATS, *formats.ALIASES]) + ".",
)
@output_option(help="Write to this file (atomically) instead of stdout.")
@json_option(help="Print a JSON summary instead of the file.")
def export_command(
    bundle: str,
    trusted_keys: tuple[str, ...],
    policy_path: str,
    store: str | None,
    app_id: str | None,
    now_text: str | None,
    fmt: str,
    output: str | None,
    as_json: bool,
) -> int:
    """Render the embedded POLICY with BUNDLE applied in a platform's format (verified first)."""
    formats.get(formats.ALIASES.get(fmt, (fmt, {}))[0])  # an unknown format fails first
    data = read_input(bundle)
    embedded = load_policy(policy_path)
    stored = None if store is None else BundleStore(store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", formats.ExportWarning)
        try:
            result = formats.render_bundle(
                data,
                fmt,
                trusted_keys=trusted_keys if stored is None else stored.trusted_keys(trusted_keys),
                embedded=embedded,
                now=parse_now(now_text),
                app_id=app_id,
                stored_version=None if stored is None else stored.version(),
            )
        except BundleError as exc:
            if as_json:
                print_json({"valid": False, "reason": exc.reason, "detail": exc.message})
            else:
                click.echo(exc.message)  # refused (reason): detail
            return int(ExitStatus.CHECK_FAILED)
    messages = [str(w.message) for w in caught if issubclass(w.category, formats.ExportWarning)]
    for message in messages:
        click.echo(f"warning: {message}", err=True)
    runtime = formats.RUNTIME_UPDATES.get(fmt)
    note = (
        f"{fmt} cannot take pins at run time: ship this in the next app release"
        if runtime is None
        else f"{fmt} at run time: {runtime}"
    )
    content = result.encode("utf-8") if isinstance(result, str) else result
    if output is not None:
        write_atomically(output, content)
    if as_json:
        print_json(
            {
                "valid": True,
                "format": fmt,
                "output": output,
                "runtime_update": runtime,
                "warnings": messages,
                "content": result if isinstance(result, str) else None,
            }
        )
        return int(ExitStatus.OK)
    click.echo(f"note: {note}", err=True)
    if output is None and isinstance(result, str):
        click.echo(result, nl=False)
    elif output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
    else:
        click.echo(f"wrote {output} ({fmt})", err=True)
    return int(ExitStatus.OK)

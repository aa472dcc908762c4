"""Reading what the user gave several commands: ``host[:port]`` targets, secrets and key files.

Shared by ``pin``, ``check``, ``init``, ``keygen`` and ``rotate check``, so that no command
imports another command's module (and its dependencies) to reuse a helper. click is imported
only for the password prompt, so the core install's ``pinset pin`` (no click) reads here too.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pinset.chain import LoadedChain, PasswordError, load_chain
from pinset.errors import ConfigError

__all__ = ["load_key_file", "parse_host_port", "read_password", "read_secret"]


def parse_host_port(target: str, default_port: int = 443) -> tuple[str, int]:
    """Split ``host``, ``host:port``, ``[v6]:port`` or ``https://host:port/`` into (host, port)."""
    text = target.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0]
    host, port_text = text, ""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ConfigError(f"unclosed '[' in {target!r}", hint="write [2001:db8::1]:443")
        host, rest = text[1:close], text[close + 1 :]
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host:
        raise ConfigError(f"no host in {target!r}", hint="write host or host:port")
    if not port_text:
        return host, default_port
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ConfigError(
            f"bad port {port_text!r} in {target!r}",
            hint="a port is a number from 1 to 65535 (host:port); or the file does not exist",
        )
    return host, int(port_text)


def read_secret(path: str | None) -> bytes | None:
    """The first line of a secret file (without its line break), or ``None`` without a path."""
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=path) from None
    return data.splitlines()[0] if data.strip() else b""


def read_password(path: str | None, *, confirm: bool, prompt: str) -> bytes:
    """The password from the first line of ``path`` (``--password-file``), else a hidden prompt.

    Ctrl-C at the prompt propagates (exit 130); standard input ending before a
    password was typed is a :class:`ConfigError`.
    """
    secret = read_secret(path)
    if secret is None:
        import click  # the prompt only: `pinset pin` on a core install reads files without click

        try:
            with warnings.catch_warnings():
                # getpass warns when it cannot hide input (a pipe); the prompt still works.
                warnings.simplefilter("ignore")
                text: str = click.prompt(
                    prompt,
                    hide_input=True,
                    confirmation_prompt=confirm,
                    default="",
                    show_default=False,
                )
        except (click.Abort, EOFError) as exc:
            if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
                raise
            click.echo(err=True)  # end the prompt's line
            raise ConfigError(
                "no password: standard input ended before one was typed",
                key="--password-file",
                hint="put the password on the first line of a file and pass --password-file",
            ) from None
        secret = text.encode("utf-8")
    return secret


def load_key_file(path: str, password_file: str | None) -> LoadedChain:
    """:func:`load_chain` of ``path``; an encrypted key's password is asked for only then."""
    try:
        return load_chain(path)
    except PasswordError as exc:
        if not exc.missing:
            raise
    password = read_password(password_file, confirm=False, prompt=f"Password for {path}")
    return load_chain(path, password=password)

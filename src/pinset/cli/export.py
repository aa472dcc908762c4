"""``pinset export POLICY --format F [-o FILE]``: write a policy in a platform's format.

POLICY is a ``pinset.toml`` / JSON policy, or any file an importer reads (so a
config can be converted from one platform to another). Output goes to stdout,
or atomically to ``-o FILE``. What the format cannot express either fails with
exit 2 (:class:`~pinset.formats.ExportError`) or is written as the nearest safer
equivalent with a ``warning:`` line on stderr saying exactly what differs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

import click

from pinset import formats
from pinset.cli._app import ExitStatus
from pinset.cli._output import print_json
from pinset.errors import ConfigError

__all__ = ["command", "read_input", "write_atomically"]


def read_input(path: str) -> bytes:
    """The bytes of ``path`` (``-`` is standard input), or a :class:`ConfigError`."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=path) from None


def write_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: readers see the old file or the new one."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror or exc}", source=path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            os.chmod(temp, target.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, target)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write: {exc.strerror or exc}", source=path) from None


def _parse_options(pairs: tuple[str, ...]) -> dict[str, object]:
    options: dict[str, object] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--option {pair!r} is not KEY=VALUE", key="option")
        lowered = value.strip().lower()
        options[key.strip().replace("-", "_")] = (
            True if lowered == "true" else False if lowered == "false" else value
        )
    return options


@click.command(
    "export",
    help="Write POLICY (pinset.toml, or any importable config) in a platform's format.",
)
@click.argument("policy_file", metavar="POLICY")
@click.option(
    "-f",
    "--format",
    "fmt",
    required=True,
    help="Target format: " + ", ".join([*formats.FORMATS, *formats.ALIASES]) + ".",
)
@click.option("-o", "--output", help="Write to this file (atomically) instead of stdout.")
@click.option(
    "-O",
    "--option",
    "option_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A writer option of the target format (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of the file.")
def command(
    policy_file: str, fmt: str, output: str | None, option_pairs: tuple[str, ...], as_json: bool
) -> int:
    source = "<stdin>" if policy_file == "-" else policy_file
    imported = formats.load(read_input(policy_file), source=source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", formats.ExportWarning)
        result = formats.dump(imported.policy, fmt, **_parse_options(option_pairs))
    messages = [str(w.message) for w in caught if issubclass(w.category, formats.ExportWarning)]
    for message in messages:
        click.echo(f"warning: {message}", err=True)
    data = result.encode("utf-8") if isinstance(result, str) else result
    if output is not None:
        write_atomically(output, data)
    if as_json:
        print_json(
            {
                "format": fmt,
                "input_format": imported.format,
                "output": output,
                "warnings": messages,
                "content": result if isinstance(result, str) else None,
            }
        )
    elif output is None and isinstance(result, str):
        click.echo(result, nl=False)
    elif output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return int(ExitStatus.OK)

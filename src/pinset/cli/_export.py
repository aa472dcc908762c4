"""``pinset export POLICY --format F [-o FILE]``: write a policy in a platform's format.

POLICY is a ``pinset.toml`` / JSON policy, or any file an importer reads (so a
config can be converted from one platform to another). Output goes to stdout,
or atomically to ``-o FILE``. What the format cannot express either fails with
exit 2 (:class:`~pinset.formats.ExportError`) or is written as the nearest safer
equivalent with a ``warning:`` line on stderr saying exactly what differs.
"""

from __future__ import annotations

import difflib
import inspect
import sys
import warnings

import click

from pinset import formats
from pinset.cli._app import SectionedCommand
from pinset.cli._files import load_input, write_atomically
from pinset.cli._options import format_option, json_option, output_option
from pinset.cli._output import print_json
from pinset.errors import ConfigError
from pinset.status import ExitStatus

__all__ = ["command", "writer_options"]


def writer_options(fmt: str) -> list[str]:
    """The ``-O KEY=VALUE`` keys the writer of ``fmt`` accepts (an unknown ``fmt`` raises)."""
    name, fixed = formats.ALIASES.get(fmt, (fmt, {}))
    module = formats.get(name)
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = inspect.signature(module.dumps).parameters.values()
    return [
        p.name for p in params if p.kind in kinds and p.name != "policy" and p.name not in fixed
    ]


def _check_options(fmt: str, options: dict[str, object]) -> None:
    allowed = writer_options(fmt)
    for key in options:
        if key in allowed:
            continue
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
        if close:
            hint = f"did you mean -O {close[0].replace('_', '-')}=...?"
        elif allowed:
            hint = "its options: " + ", ".join(a.replace("_", "-") for a in allowed)
        else:
            hint = f"the {fmt} writer takes no options"
        raise ConfigError(f"format {fmt!r} has no option {key!r}", key="--option", hint=hint)


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


_EPILOG = """\b
Examples:
  pinset export pinset.toml -f android -o res/xml/network_security_config.xml
  pinset export pinset.toml -f ios-ats -O identities=leaf > Info.plist
  pinset export pinset.toml -f trustkit-swift
  pinset export pinset.toml -f okhttp -O language=java
  pinset export pinset.toml -f hpkp -O host=api.example.com -O max-age=600
  pinset export network_security_config.xml -f ios-ats   # convert
  cat pinset.toml | pinset export - -f pinset-json

\b
Writer options (-O): ios-ats: binary, identities=ca|leaf; trustkit: binary,
swizzle-network-delegates, swift; okhttp: language=kotlin|java, okhttp=3|4.3
(the oldest OkHttp the app ships); hpkp: host, max-age, host-line; pinset: json.

\b
Exit status: 0 written (warnings on stderr), 2 the policy does not load or the
format cannot express it."""


@click.command(
    "export",
    cls=SectionedCommand,
    epilog=_EPILOG,
    sections={
        "Format": ["fmt", "option_pairs"],
        "Output": ["output", "as_json"],
    },
)
@click.argument("policy_file", metavar="POLICY")
@format_option(
    required=True,
    help="Target format: " + ", ".join([*formats.FORMATS, *formats.ALIASES]) + ".",
)
@output_option(help="Write to this file (atomically) instead of stdout.")
@click.option(
    "-O",
    "--option",
    "option_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A writer option of the target format (repeatable).",
)
@json_option(help="Print a JSON summary instead of the file.")
def command(
    policy_file: str, fmt: str, output: str | None, option_pairs: tuple[str, ...], as_json: bool
) -> int:
    """Write POLICY in a platform's format.

    POLICY is a pinset.toml / JSON policy or any config pinset import reads
    (so one platform's config converts to another's); - reads standard input.
    """
    options = _parse_options(option_pairs)
    _check_options(fmt, options)  # an unknown format or option fails before reading
    imported = load_input(policy_file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", formats.ExportWarning)
        try:
            result = formats.dumps(imported.policy, fmt, **options)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"bad writer option: {exc}", key="--option") from None
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

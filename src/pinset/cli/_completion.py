"""``pinset completion SHELL``: print the shell's completion script for ``pinset``.

The script is click's own (``click.shell_completion``): the shell calls ``pinset`` back
with ``_PINSET_COMPLETE=<shell>_complete`` and the words typed so far, and click answers
with the commands, options and values that fit. Command names come from
:data:`pinset.cli._app.COMMANDS`, so completing ``pinset <TAB>`` imports no command.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from pinset.cli._app import Choice

__all__ = ["COMPLETE_VAR", "SHELLS", "command"]

#: The environment variable of click's completion protocol for the program ``pinset``.
COMPLETE_VAR = "_PINSET_COMPLETE"
SHELLS = ("bash", "zsh", "fish")

_INSTALL = {
    "bash": 'eval "$(pinset completion bash)"  # in ~/.bashrc (bash 4.4 or later)',
    "zsh": 'eval "$(pinset completion zsh)"  # in ~/.zshrc',
    "fish": "pinset completion fish > ~/.config/fish/completions/pinset.fish",
}


@click.command(
    "completion",
    epilog="\b\nInstall it:\n" + "\n".join(f"  {line}" for line in _INSTALL.values()),
)
@click.argument("shell", type=Choice(SHELLS), metavar="SHELL")
def command(shell: str) -> int:
    """Print the completion script for SHELL (bash, zsh or fish)."""
    from pinset.cli._app import cli

    completion = get_completion_class(shell)
    assert completion is not None  # click ships all three
    click.echo(completion(cli, {}, "pinset", COMPLETE_VAR).source())
    return 0

"""The documentation site's generated pages and the docs runner, checked without mkdocs.

scripts/mkdocs_hooks.py renders the CLI reference from click and lists the API reference's
modules from docs/architecture.md; tests/test_docs_run.py runs the docs' console blocks. Here:
the reference covers every command and prints what the installed command prints, the API page
covers the public surface, links that leave docs/ land on copies in the site, and the runner
reports a block whose output drifted.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

import click
import pytest

import test_docs_run as runner
from pinset.cli import _app
from pinset.cli._app import COMMANDS

ROOT = Path(__file__).resolve().parents[1]


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts/mkdocs_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def test_the_cli_reference_has_every_command_and_subcommand() -> None:
    paths = hooks._command_paths()
    assert {path[0] for path in paths if path} == set(COMMANDS)
    for expected in [
        (),
        ("rotate", "plan"),
        ("bundle", "sign"),
        ("ct", "check"),
        ("mitm", "serve"),
    ]:
        assert expected in paths
    page = hooks.cli_reference()
    assert page.count("\n## pinset") == len(paths)


@pytest.mark.parametrize("path", [("pin",), ("rotate", "check"), ("bundle", "sign")])
def test_the_cli_reference_shows_every_option_the_command_declares(path: tuple[str, ...]) -> None:
    command: click.Command = _app.cli
    for name in path:
        assert isinstance(command, click.Group)
        sub = command.get_command(click.Context(command), name)
        assert sub is not None
        command = sub
    shown = hooks.cli_help(path)
    assert shown.startswith(f"Usage: pinset {' '.join(path)} ")
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert any(opt in shown for opt in param.opts), (path, param.opts)


def test_the_api_reference_documents_the_public_surface() -> None:
    modules = hooks.public_modules()
    assert modules[0] == "pinset"
    assert {"pinset.policyfile", "pinset.ct", "pinset.updates", "pinset.testing.plugin"} <= set(
        modules
    )
    page = hooks.api_reference()
    assert all(f"\n::: {module}\n" in page for module in modules)


def test_links_that_leave_docs_point_at_copies_in_the_site() -> None:
    assert hooks.site_uri("audit.md", "../.pre-commit-hooks.yaml") == "repo/.pre-commit-hooks.yaml"
    assert (
        hooks.site_uri("clients/httpx.md", "../../tests/test_docs.py") == "repo/tests/test_docs.py"
    )
    # A copied file's links are from the repository root; those into docs/ go to the page.
    assert hooks.site_uri("repo/SECURITY.md", "docs/security.md") == "security.md"
    # Inside docs/, outside the repository, or missing: left alone (a strict build fails on it).
    assert hooks.site_uri("audit.md", "formats.md") is None
    assert hooks.site_uri("audit.md", "../../etc/passwd") is None
    assert hooks.site_uri("audit.md", "../no-such-file.md") is None
    assert hooks.site_uri("audit.md", "https://example.com/x.md") is None


def _ran(page: Path) -> list[runner.Ran]:
    """What each command of ``page`` printed, in order."""
    return [one for _, ran in runner.run_page(page, runner.Bindings()) for one in ran]


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


# How a block marked `vary` is matched (the runner's own scanner, reached through a block).
VARYING = runner.Block(Path("page.md"), 1, "console", "", (("vary", "random"),)).scanner


def test_the_runner_reports_drift_and_passes_what_matches(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "<!-- docs-test: file p.toml -->\n```toml\n[[domain]]\nname = 'a.example'\n```\n\n"
        "```console\n$ pinset import p.toml -o p.json\n$ echo $?\n2\n$ echo drifted\nshown\n```\n",
    )
    blocks = list(runner.blocks(page))
    assert blocks[0].marker == ("file", "p.toml")
    ran = _ran(page)
    assert [one.command.line for one in ran] == [
        "pinset import p.toml -o p.json",
        "echo $?",
        "echo drifted",
    ]
    first, status, drift = ran
    assert status.printed == "2"  # `$?` is the status of the command before, as in a shell
    assert status.problem is None
    assert "p.toml" in first.printed
    assert drift.printed == "drifted"
    assert drift.problem == "the output differs"


def test_a_page_is_one_shell_whose_servers_live_until_it_ends(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "<!-- docs-test: file serve.py -->\n```python\nimport socket, time\n"
        "s = socket.create_server(('127.0.0.1', 0))\n"
        "print('listening on port', s.getsockname()[1], flush=True)\n"
        "while True:\n    s.accept()[0].close()\n```\n\n"
        "<!-- docs-test: vary the port -->\n"
        "```console\n$ python serve.py &\nlistening on port 41234\n$ GREETING=hello\n```\n\n"
        "```console\n$ python -c 'import socket; socket.create_connection((\"127.0.0.1\", 41234))'"
        " && echo 127.0.0.1:41234 $GREETING\n127.0.0.1:41234 hello\n```\n",
    )
    ran = _ran(page)
    assert [one.problem for one in ran] == [None, None, None]
    port = ran[0].printed.split()[-1]
    assert port != "41234"  # the server's own port, to which the later command was sent
    assert not runner.listening(int(port))  # killed with the page


def test_a_server_that_prints_nothing_is_waited_for_on_the_port_it_accepts_on(
    tmp_path: Path,
) -> None:
    # openssl s_server -accept N -quiet prints nothing: the port in its command says when
    # it is ready (here a server that binds only after a while).
    page = _page(
        tmp_path,
        "<!-- docs-test: file serve.py -->\n```python\nimport socket, sys, time\n"
        "time.sleep(0.5)\ns = socket.create_server(('127.0.0.1', int(sys.argv[2])))\n"
        "while True:\n    s.accept()[0].close()\n```\n\n"
        "```console\n$ python serve.py -accept 8999 &\n"
        "$ python -c 'import socket; socket.create_connection((\"127.0.0.1\", 8999))' && echo up\n"
        "up\n```\n",
    )
    ran = _ran(page)
    assert [one.problem for one in ran] == [None, None]


ED_KEY = "MCowBQYDK2VwAyEA"  # the DER prefix of an Ed25519 SubjectPublicKeyInfo, in base64


def _pin(letter: str) -> str:
    return f"sha256/{letter * 43}="


def _ed(letter: str) -> str:
    return f"{ED_KEY}{letter * 43}="


@pytest.mark.parametrize(
    ("shown", "printed", "problem"),
    [
        # One key shown twice is one key of the run, printed twice.
        (
            "pin sha256/" + "A" * 43 + "= again sha256/" + "A" * 43 + "=",
            "pin sha256/" + "B" * 43 + "= again sha256/" + "B" * 43 + "=",
            None,
        ),
        (
            "pin sha256/" + "A" * 43 + "= again sha256/" + "A" * 43 + "=",
            "pin sha256/" + "B" * 43 + "= again sha256/" + "C" * 43 + "=",
            f"{_pin('A')} stood for {_pin('B')} before, here for {_pin('C')}",
        ),
        # Two keys shown must be two keys of the run.
        (
            "sha256/" + "A" * 43 + "= sha256/" + "D" * 43 + "=",
            "sha256/" + "B" * 43 + "= sha256/" + "B" * 43 + "=",
            f"{_pin('B')} was shown as {_pin('A')} before, here as {_pin('D')}",
        ),
        # A key's PEM body (a line of base64 at a time) and a port in JSON vary like a pin.
        (
            f'"public_key": "{"M" * 64}\\n{"a" * 56}==\\n", "port": 33527',
            f'"public_key": "{"N" * 64}\\n{"b" * 56}==\\n", "port": 41002',
            None,
        ),
        (
            f"-----BEGIN PUBLIC KEY-----\n{'M' * 60}=\nagain {'M' * 60}=",
            f"-----BEGIN PUBLIC KEY-----\n{'N' * 60}=\nagain {'O' * 60}=",
            f"{'M' * 60}= stood for {'N' * 60}= before, here for {'O' * 60}=",
        ),
        # A pin shortened with an ellipsis, and a URL's port.
        (
            "leaf sha256/LloViObPOoFa… at https://api.pinset.test:37557/",
            "leaf sha256/AOxyR47GcO+y… at https://api.pinset.test:47627/",
            None,
        ),
        # Dates and durations may be any; the words around them may not.
        ("expires 2027-02-26 after 1.2 ms", "expires 2027-03-01 after 0.9 ms", None),
        (
            "expires 2027-02-26 after 1.2 ms",
            "expired 2027-03-01 after 0.9 ms",
            "the output differs",
        ),
        ("3 pins", "4 pins", "the output differs"),
        # A public key in base64 (a PEM body, a key list) is bound like a pin.
        (
            f'-----BEGIN PUBLIC KEY-----\n{ED_KEY}{"a" * 43}=\n"{ED_KEY}{"a" * 43}="',
            f'-----BEGIN PUBLIC KEY-----\n{ED_KEY}{"b" * 43}=\n"{ED_KEY}{"b" * 43}="',
            None,
        ),
        (
            f"key {ED_KEY}{'a' * 43}= key {ED_KEY}{'a' * 43}=",
            f"key {ED_KEY}{'b' * 43}= key {ED_KEY}{'c' * 43}=",
            f"{_ed('a')} stood for {_ed('b')} before, here for {_ed('c')}",
        ),
        # The Date header of an HTTP answer (curl -i, curl -D -) is a date too.
        ("date: Sun, 06 Dec 2026 16:07:18 GMT", "date: Mon, 07 Dec 2026 09:00:01 GMT", None),
        # An object's address, as Python prints it, is an identifier of the run.
        ("<function start at 0x7f14c1499120>", "<function start at 0x7fec754b9da0>", None),
    ],
)
def test_a_varying_block_binds_each_random_value_to_one_shown_value(
    shown: str, printed: str, problem: str | None
) -> None:
    assert runner.Bindings().match(shown, printed, runner.VARY) == problem


def test_a_strict_block_reads_bound_values_as_shown_and_nothing_else() -> None:
    bindings = runner.Bindings()
    shown, run = "sha256/" + "A" * 43 + "=", "sha256/" + "B" * 43 + "="
    assert bindings.match(f"pin {shown}", f"pin {run}", runner.VARY) is None
    assert bindings.match(f"cat: {shown}", f"cat: {run}", None) is None
    assert bindings.to_run(f"pinset check --pin {shown}") == f"pinset check --pin {run}"
    other = "sha256/" + "C" * 43 + "="
    assert bindings.match(f"cat: {shown}", f"cat: {other}", None) == "the output differs"
    assert bindings.match("on 2027-02-26", "on 2027-03-01", None) == "the output differs"
    # The base64 of a bound pin is bound with it (an HPKP header, a plist's SPKI hashes).
    assert bindings.match(f'pin-sha256="{"A" * 43}="', f'pin-sha256="{"B" * 43}="', None) is None
    assert bindings.to_run(f"key {'A' * 43}=") == f"key {'B' * 43}="


def test_a_varying_block_takes_a_pem_block_a_port_option_and_a_temporary_name_as_values() -> None:
    def pem(body: str) -> str:
        return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----"

    bindings = runner.Bindings()
    shown = f"proxyPort=41057 in /tmp/pinset-mitm-7phw00o4/ca\n{pem('A' * 64 + chr(10) + 'AB==')}"
    printed = f"proxyPort=52065 in /tmp/pinset-mitm-u5jq3756/ca\n{pem('C' * 64 + chr(10) + 'D=')}"
    assert bindings.match(shown, printed, VARYING) is None
    assert bindings.to_run("curl http://127.0.0.1:41057/") == "curl http://127.0.0.1:52065/"
    # The same PEM block must be printed as the same block.
    assert bindings.match(pem("A" * 64 + "\nAB=="), pem("E" * 64), VARYING) is not None


def test_the_base64_of_a_bound_pin_is_the_runs_in_later_commands() -> None:
    bindings = runner.Bindings()
    shown, run = "sha256/" + "A" * 43 + "=", "sha256/" + "B" * 43 + "="
    assert bindings.match(f"pin {shown}", f"pin {run}", VARYING) is None
    assert bindings.to_run(f'curl --pinnedpubkey "sha256//{"A" * 43}="') == (
        f'curl --pinnedpubkey "sha256//{"B" * 43}="'
    )


def test_the_runner_normalises_only_its_own_directory(tmp_path: Path) -> None:
    text = f"wrote {tmp_path}/out.xml\nin {tmp_path}  \n\n"
    assert runner.normalise(text, tmp_path) == "wrote out.xml\nin ."


def test_a_skip_marker_needs_a_reason(tmp_path: Path) -> None:
    page = _page(tmp_path, "<!-- docs-test: skip -->\n```console\n$ pinset demo\n```\n")
    (block,) = runner.blocks(page)
    assert block.marker == ("skip", "")
    assert block.skip_reason == ""  # test_every_console_block_is_run_or_skipped... refuses it


def test_sphinx_roles_of_docstrings_show_as_the_name_alone() -> None:
    # What mkdocstrings renders for ":func:`ssl_context`" and ":class:`~pinset.errors.ConfigError`".
    html = (
        "<p>See :func:<code>ssl_context</code>; raises :class:<code>~pinset.errors.ConfigError"
        "</code> or :exc:<code>ssl.SSLError</code>; keeps :<code>literal</code></p>"
    )
    assert hooks.sphinx_roles_as_code(html) == (
        "<p>See <code>ssl_context</code>; raises <code>ConfigError</code> or "
        "<code>ssl.SSLError</code>; keeps :<code>literal</code></p>"
    )


def test_a_cd_holds_until_its_block_ends(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "```console\n$ mkdir sub && cd sub\n$ pwd\nsub\n```\n\n```console\n$ pwd\n.\n```\n",
    )
    ran = _ran(page)
    assert [(one.printed, one.problem) for one in ran] == [("", None), ("sub", None), (".", None)]


def test_an_env_marker_exports_for_its_block_only_and_passes_test_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINSET_DOCS_TEST_PASSED", "from the test")
    page = _page(
        tmp_path,
        "```console\n$ export SHOWN=page\n```\n\n"
        "<!-- docs-test: env SHOWN=hidden PINSET_BENCH_QUICK=1 PINSET_DOCS_TEST_PASSED -->\n"
        "```console\n$ echo $SHOWN $PINSET_BENCH_QUICK $PINSET_DOCS_TEST_PASSED\n"
        "hidden 1 from the test\n```\n\n"
        "```console\n$ echo $SHOWN ${PINSET_BENCH_QUICK-unset} ${PINSET_DOCS_TEST_PASSED-unset}\n"
        "page unset unset\n```\n",
    )
    ran = _ran(page)
    assert [one.problem for one in ran] == [None, None, None]
    # A variable the test's environment lacks fails the page, named, instead of passing.
    monkeypatch.delenv("PINSET_DOCS_TEST_PASSED")
    with pytest.raises(AssertionError, match="needs PINSET_DOCS_TEST_PASSED"):
        list(runner.run_page(page, runner.Bindings()))


def test_venv_blocks_run_only_where_a_venv_is_given(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "```console\n$ echo here\nhere\n```\n\n"
        "<!-- docs-test: venv pinset click -->\n"
        "```console\n$ tool\nfresh\n```\n",
    )
    ran = [b.line for b, _ in runner.run_page(page, runner.Bindings())]
    assert ran == [1]
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "tool").write_text("#!/bin/sh\necho fresh\n", encoding="utf-8")
    (bin_dir / "tool").chmod(0o755)
    asked: list[str] = []

    def venv(requirements: str) -> Path:
        asked.append(requirements)
        return bin_dir

    elsewhere = list(runner.run_page(page, runner.Bindings(), venv=venv))
    assert [(b.line, [one.problem for one in r]) for b, r in elsewhere] == [(7, [None])]
    assert asked == ["pinset click"]


def test_figures_free_every_number_and_version_but_not_the_words() -> None:
    shown = "Python 3.11.7: 2475 µs (of 1000), ratio 1.004 [ok ≤ 1.01]; 20,000 sent, 21.9x"
    printed = "Python 3.12.1: 2811 µs (of 20), ratio 0.91 [ok ≤ 1.01]; 600 sent, 8x"
    assert runner.Bindings().match(shown, printed, runner.FIGURES) is None
    assert runner.Bindings().match(shown, printed.replace("ok", "OVER"), runner.FIGURES) == (
        "the output differs"
    )
    # Columns aligned to numbers of another width.
    assert runner.Bindings().match("for  200  349.5/s", "for   20   1.0/s", runner.FIGURES) is None
    assert runner.Bindings().match("for 200", "for20", runner.FIGURES) == "the output differs"


def test_a_varying_block_moves_its_dates_by_the_days_since_the_pages_were_made() -> None:
    bindings = runner.Bindings()
    line = "pinset rotate check p.toml --now 2026-12-06  # expiration = 2027-03-01T00:00:00Z"
    assert bindings.to_run(line) == line
    assert bindings.to_run(line, 400) == (
        "pinset rotate check p.toml --now 2028-01-10  # expiration = 2028-04-04T00:00:00Z"
    )
    assert runner.shift_days() == (datetime.now(timezone.utc).date() - runner.DOCS_DAY).days


def test_the_python_that_runs_the_test_may_be_any_in_a_varying_block() -> None:
    shown = "installed package pinset 0.1.0, installed using Python 3.11.7"
    assert runner.Bindings().match(shown, shown.replace("3.11.7", "3.13.0"), runner.VARY) is None
    assert runner.Bindings().match(shown, shown.replace("0.1.0", "0.2.0"), runner.VARY) is not None


def test_the_reason_phrase_of_an_http_status_line_may_be_any_in_a_varying_block() -> None:
    # Python 3.13's http module words 422 and 413 as RFC 9110 does; 3.11 as RFC 7231 did.
    shown = "HTTP/1.1 422 Unprocessable Entity\nserver: uvicorn"
    printed = "HTTP/1.1 422 Unprocessable Content\nserver: uvicorn"
    assert runner.Bindings().match(shown, printed, runner.VARY) is None
    assert runner.Bindings().match(shown, printed.replace("422", "400"), runner.VARY) is not None

"""Property tests: every format importer refuses bad input with a located ConfigError.

Each format's ``loads`` and :func:`pinset.formats.load` / :func:`~pinset.formats.detect`
get random bytes, random text, and mutations of real files (the corpus under
``tests/fixtures/corpus`` and one export of a sample policy per format). Only
:class:`~pinset.errors.PinsetError` subclasses may escape; an error names its
source, and a line whenever the input had more than one line to choose from.
XML entity tricks are refused, never expanded or resolved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import plistlib
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinset import formats
from pinset.audit import imported_findings
from pinset.errors import ConfigError, PinsetError
from pinset.formats import _android as android
from pinset.formats import _hpkp as hpkp
from pinset.formats import _native as native
from pinset.formats import _okhttp as okhttp
from pinset.formats._android import trustkit_android
from pinset.formats._apple import ios_ats, trustkit
from pinset.formats._model import ExportWarning
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
SOURCE = "fuzzed.cfg"

MODULES: dict[str, Any] = {
    "android": android,
    "trustkit-android": trustkit_android,
    "ios-ats": ios_ats,
    "trustkit": trustkit,
    "okhttp": okhttp,
    "hpkp": hpkp,
    "pinset": native,
}

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
_A, _B, _C = (Pin(hashlib.sha256(f"fuzz-{n}".encode()).digest()) for n in "abc")
SAMPLE_POLICY = Policy(
    rules=(
        DomainRule(
            "api.example.com",
            pins=(_A, _B),
            include_subdomains=True,
            expiration=dt.date(2031, 1, 2),
            report_uris=("https://r.example.net/pin",),
        ),
        DomainRule("cdn.example.org", pins=(_B, _C)),
    )
)


def _sample(fmt: str, **options: Any) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)
        text = formats.dumps(SAMPLE_POLICY, fmt, **options)
    return text.encode("utf-8") if isinstance(text, str) else text


# (format, bytes) of every real file we can mutate.
SEEDS: list[tuple[str, bytes]] = [
    *(("android", p.read_bytes()) for p in sorted((CORPUS / "android-nsc").glob("*.xml"))),
    *(("android", p.read_bytes()) for p in sorted((CORPUS / "android-nsc-nopin").glob("*.xml"))),
    *(("ios-ats", p.read_bytes()) for p in sorted((CORPUS / "ios-plist").glob("*.plist"))),
    *(("trustkit", p.read_bytes()) for p in sorted((CORPUS / "ios-plist").glob("*.plist"))),
    *((fmt, _sample(fmt)) for fmt in MODULES if fmt != "hpkp"),
    ("pinset", _sample("pinset-json")),
    ("hpkp", _sample("hpkp", host="api.example.com")),
]


def _load(fmt: str, data: str | bytes) -> object:
    options = {"host": "api.example.com"} if fmt == "hpkp" else {}
    return MODULES[fmt].loads(data, source=SOURCE, **options)


def _check_error(exc: PinsetError, data: str | bytes) -> None:
    """The error says what went wrong and where."""
    assert isinstance(exc, ConfigError), repr(exc)
    assert exc.message
    assert exc.source == SOURCE, (exc.source, exc.message)
    assert "Traceback" not in exc.diagnostics()
    if exc.line is not None:
        raw = data if isinstance(data, bytes) else data.encode("utf-8", "replace")
        lines = len(re.split(rb"\r\n|\r|\n", raw))
        assert 1 <= exc.line <= lines, (exc.line, lines, exc.message)


def _must_not_crash(fmt: str, data: str | bytes) -> PinsetError | None:
    """Load ``data``: any error must be a well-made ConfigError (returned for more checks)."""
    try:
        _load(fmt, data)
    except PinsetError as exc:
        _check_error(exc, data)
        return exc
    return None


# -- mutations ----------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A seed file after one to three random edits (line and byte level)."""
    fmt, data = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        data = draw(_edit(data))
    return fmt, data


def _edit(data: bytes) -> st.SearchStrategy[bytes]:
    lines = data.split(b"\n")
    n = len(lines)
    index = st.integers(0, max(n - 1, 0))
    pos = st.integers(0, max(len(data) - 1, 0))

    def delete(i: int) -> bytes:
        return b"\n".join(lines[:i] + lines[i + 1 :])

    def duplicate(i: int) -> bytes:
        return b"\n".join(lines[: i + 1] + lines[i:])

    def swap(i: int, j: int) -> bytes:
        out = list(lines)
        out[i], out[j] = out[j], out[i]
        return b"\n".join(out)

    def flip(p: int, bit: int) -> bytes:
        if not data:
            return data
        return data[:p] + bytes([data[p] ^ (1 << bit)]) + data[p + 1 :]

    def insert(p: int, junk: bytes) -> bytes:
        return data[:p] + junk + data[p:]

    junk = st.sampled_from(
        [
            b"<",
            b">",
            b"&",
            b"&amp;",
            b"&#0;",
            b"]]>",
            b"<!-- -->",
            b"${PIN}",
            b'"',
            b"\x00",
            b"\xff\xfe",
            b"\xc3",
            b"<x/>",
            b"</pin-set>",
            b"<key>NSPinnedDomains</key>",
            b"<integer>1</integer>",
            b"<dict/>",
            b"[domain]",
            b"pins = 3",
            b'name = ""',
            b'.add("", "")',
            b"; max-age=-1",
            b'pin-sha256="AAAA"',
            b"\r",
            b"\t" * 3,
        ]
    ) | st.binary(max_size=12)
    return st.one_of(
        index.map(delete),
        index.map(duplicate),
        st.tuples(index, index).map(lambda ij: swap(*ij)),
        st.tuples(pos, st.integers(0, 7)).map(lambda pb: flip(*pb)),
        pos.map(lambda p: data[:p]),  # truncation
        st.tuples(pos, junk).map(lambda pj: insert(*pj)),
    )


@pytest.mark.parametrize("fmt", list(MODULES))
@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_only_raise_config_error(fmt: str, data: bytes) -> None:
    _must_not_crash(fmt, data)


@pytest.mark.parametrize("fmt", list(MODULES))
@FUZZ
@given(text=st.text(max_size=300))
def test_random_text_only_raises_config_error(fmt: str, text: str) -> None:
    _must_not_crash(fmt, text)


_XML_FORMATS = ("android", "trustkit-android", "ios-ats", "trustkit")


@settings(FUZZ, max_examples=400)
@given(mutated())
def test_mutated_real_files_only_raise_config_error(case: tuple[str, bytes]) -> None:
    fmt, data = case
    error = _must_not_crash(fmt, data)
    if error is not None and fmt in _XML_FORMATS and not data.startswith(b"bplist"):
        # An XML parser always knows where it is.
        assert error.line is not None, error.message


@settings(FUZZ, max_examples=150)
@given(mutated())
def test_load_detects_or_refuses_mutated_files(case: tuple[str, bytes]) -> None:
    _fmt, data = case
    try:
        name = formats.detect(data, SOURCE)
    except PinsetError as exc:
        _check_error(exc, data)
        return
    assert name in MODULES
    try:
        formats.loads(data, source=SOURCE, **({"host": "x.example"} if name == "hpkp" else {}))
    except PinsetError as exc:
        _check_error(exc, data)


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_detect_random_input_names_the_file(data: bytes) -> None:
    try:
        name = formats.detect(data, SOURCE)
    except PinsetError as exc:
        _check_error(exc, data)
    else:
        assert name in MODULES


# -- XML entity tricks ---------------------------------------------------------------

_NSC = (CORPUS / "android-nsc" / "GrapheneOS__Auditor__network_security_config.xml").read_bytes()
_PLIST = (CORPUS / "ios-plist" / "datatheorem__TrustKit__TrustKitTests_Info.plist").read_bytes()

_DTDS = {
    "internal-entity": b'<!DOCTYPE x [<!ENTITY a "b">]>',
    "billion-laughs": (
        b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
            for i in range(1, 10)
        )
        + b"]>"
    ),
    "external-entity": b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    "external-dtd": b'<!DOCTYPE x SYSTEM "file:///etc/passwd">',
    "parameter-entity": b'<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
}


def _with_dtd(document: bytes, dtd: bytes, use: bytes) -> bytes:
    """``document`` with ``dtd`` after its XML declaration and ``use`` inside the root."""
    head, sep, rest = document.partition(b"?>")
    if not sep:
        head, rest = b"", document
    else:
        head += sep
    # Drop an existing DOCTYPE (plists carry one) so ours is the only one.
    if b"<!DOCTYPE" in rest:
        start = rest.index(b"<!DOCTYPE")
        rest = rest[:start] + rest[rest.index(b">", start) + 1 :]
    body_start = re.search(rb"<[A-Za-z][^>]*>", rest).end()  # type: ignore[union-attr]
    return head + b"\n" + dtd + rest[:body_start] + use + rest[body_start:]


_XML_CASES = [
    (fmt, kind)
    for fmt in ("android", "trustkit-android", "ios-ats", "trustkit")
    for kind in _DTDS
    # Every Info.plist starts with an external DOCTYPE (Apple's); expat never
    # fetches it, so plists may keep one (tested below), NSC files may not.
    if not (kind == "external-dtd" and fmt in ("ios-ats", "trustkit"))
]


@pytest.mark.parametrize(("fmt", "kind"), _XML_CASES)
def test_xml_entities_and_dtds_are_refused_never_resolved(fmt: str, kind: str) -> None:
    document = _NSC if fmt.endswith("android") else _PLIST
    use = b"&xxe;" if "external-entity" in kind else b"&lol9;" if "laughs" in kind else b"&a;"
    data = _with_dtd(document, _DTDS[kind], use if "entity" in kind or "laughs" in kind else b"")
    with pytest.raises(ConfigError) as caught:
        _load(fmt, data)
    error = caught.value
    assert error.source == SOURCE
    assert error.line is not None
    assert "root:" not in str(error)  # /etc/passwd never read
    assert "DOCTYPE" in (error.message + (error.hint or "")) or "ENTITY" in (error.hint or "")


@pytest.mark.parametrize("fmt", ["ios-ats", "trustkit"])
def test_plist_external_doctype_is_never_fetched(fmt: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.dtd"
    secret.write_text('<!ENTITY leak "SECRET-CONTENT">')
    data = _with_dtd(_PLIST, b'<!DOCTYPE plist SYSTEM "' + secret.as_uri().encode() + b'">', b"")
    imported = _load(fmt, data)
    assert "SECRET-CONTENT" not in repr(imported)


# -- encodings ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["android", "trustkit-android", "okhttp", "hpkp", "pinset"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"])
def test_non_utf8_encodings_load_or_fail_cleanly(fmt: str, encoding: str) -> None:
    text = dict(SEEDS)[fmt].decode("utf-8") + "\n# é ü ©"
    if fmt in ("android", "trustkit-android"):
        text = text.replace("\n# é ü ©", "\n<!-- é ü © -->")
    _must_not_crash(fmt, text.encode(encoding, "replace"))


@pytest.mark.parametrize("fmt", list(MODULES))
@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"])
def test_byte_order_marks_load_or_fail_cleanly(fmt: str, bom: bytes) -> None:
    _must_not_crash(fmt, bom + dict(SEEDS)[fmt])


@pytest.mark.parametrize("fmt", list(MODULES))
def test_utf8_bom_is_accepted(fmt: str) -> None:
    data = dict(SEEDS)[fmt]
    assert _load(fmt, b"\xef\xbb\xbf" + data) == _load(fmt, data)


# -- sizes and depth ---------------------------------------------------------------


def test_huge_attribute_value_is_a_config_error_with_a_line() -> None:
    # Android skips unknown attributes, so the huge value goes where it is read.
    data = _NSC.replace(b'digest="SHA-256"', b'digest="' + b"A" * 2_000_000 + b'"', 1)
    with pytest.raises(ConfigError) as caught:
        _load("android", data)
    assert caught.value.source == SOURCE
    assert caught.value.line is not None


@pytest.mark.parametrize("fmt", ["android", "trustkit-android", "ios-ats", "trustkit"])
def test_deeply_nested_elements_do_not_recurse_out(fmt: str) -> None:
    depth = 50_000
    if fmt.endswith("android"):
        # Android skips unknown elements whole; nested domain-configs are read recursively.
        data = b"<network-security-config>" + b"<domain-config>" * depth
        data += b"</domain-config>" * depth + b"</network-security-config>"
    else:
        data = b'<plist version="1.0">' + b"<array>" * depth + b"</array>" * depth + b"</plist>"
    with pytest.raises(ConfigError) as caught:
        _load(fmt, data)
    assert caught.value.source == SOURCE
    assert caught.value.line is not None


def test_deeply_nested_native_json_does_not_recurse_out() -> None:
    depth = 100_000
    data = b'{"domain": ' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(ConfigError) as caught:
        _load("pinset", data)
    assert caught.value.source == SOURCE


# -- binary plists with wrong types ------------------------------------------------

_WRONG_VALUES: list[Any] = [
    1,
    -1,
    2**63 - 1,
    1.5,
    True,
    "",
    "x",
    b"\x00\xff",
    dt.datetime(2030, 1, 1),
    [],
    ["a", 1],
    [[["deep"]]],
    {},
    {"k": [1, {"x": b""}]},
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replace(v, rest, new) if k == head else v) for k, v in value.items()}
    return [(_replace(v, rest, new) if i == head else v) for i, v in enumerate(value)]


_PLIST_ROOTS = (
    [
        ("ios-ats", plistlib.loads(p.read_bytes().lstrip()))
        for p in sorted((CORPUS / "ios-plist").glob("*"))
    ]
    + [
        ("trustkit", plistlib.loads(p.read_bytes().lstrip()))
        for p in sorted((CORPUS / "ios-plist").glob("*"))
    ]
    + [
        ("ios-ats", plistlib.loads(_sample("ios-ats"))),
        ("trustkit", plistlib.loads(_sample("trustkit"))),
    ]
)


@st.composite
def wrong_typed_plists(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    fmt, root = draw(st.sampled_from(_PLIST_ROOTS))
    for _ in range(draw(st.integers(1, 2))):
        paths = _paths(root)
        if not paths:
            break
        root = _replace(root, draw(st.sampled_from(paths)), draw(st.sampled_from(_WRONG_VALUES)))
    binary = draw(st.booleans())
    fmt_ = plistlib.FMT_BINARY if binary else plistlib.FMT_XML
    return fmt, plistlib.dumps(root, fmt=fmt_, sort_keys=False), binary


@settings(FUZZ, max_examples=300)
@given(wrong_typed_plists())
def test_plists_with_wrong_types_at_any_key_raise_config_error(
    case: tuple[str, bytes, bool],
) -> None:
    fmt, data, binary = case
    error = _must_not_crash(fmt, data)
    if error is not None and not binary:
        assert error.line is not None, error.message


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt", ["ios-ats", "trustkit"])
def test_many_domains_load_in_linear_time(fmt: str) -> None:
    def plist(n: int) -> bytes:
        pins = [_A.b64, _B.b64]
        root: dict[str, Any]
        if fmt == "ios-ats":
            identities = [{"SPKI-SHA256-BASE64": p} for p in pins]
            ats = {f"h{i}.example.com": {"NSPinnedLeafIdentities": identities} for i in range(n)}
            root = {"NSAppTransportSecurity": {"NSPinnedDomains": ats}}
        else:
            domains = {f"h{i}.example.com": {"TSKPublicKeyHashes": pins} for i in range(n)}
            root = {
                "TSKConfiguration": {
                    "TSKSwizzleNetworkDelegates": False,
                    "TSKPinnedDomains": domains,
                }
            }
        return plistlib.dumps(root, fmt=plistlib.FMT_BINARY)

    # A quadratic importer would need minutes for this; the timeout catches it.
    imported = _load(fmt, plist(20_000))
    assert len(imported.policy.rules) == 20_000  # type: ignore[attr-defined]


# -- regressions: each input shape that once escaped or lost its location ----------


def _nested_binary_plist(depth: int) -> bytes:
    """A binary plist of ``depth`` arrays, each holding the next (plistlib cannot write one)."""
    objects = [b"\xa1" + (i + 1).to_bytes(2, "big") for i in range(depth - 1)] + [b"\xa0"]
    body = bytearray(b"bplist00")
    offsets = []
    for obj in objects:
        offsets.append(len(body))
        body += obj
    table = len(body)
    for offset in offsets:
        body += offset.to_bytes(4, "big")
    trailer = bytes(6) + bytes([4, 2]) + len(objects).to_bytes(8, "big")
    return bytes(body + trailer + (0).to_bytes(8, "big") + table.to_bytes(8, "big"))


@pytest.mark.parametrize("fmt", ["ios-ats", "trustkit"])
def test_binary_plist_nested_deeper_than_the_stack(fmt: str) -> None:
    # Was: RecursionError from plistlib's recursive binary reader.
    with pytest.raises(ConfigError, match="too deeply") as caught:
        _load(fmt, _nested_binary_plist(5000))
    assert caught.value.source == SOURCE


@pytest.mark.parametrize("fmt", ["ios-ats", "trustkit"])
def test_xml_plist_with_a_key_outside_any_dict(fmt: str) -> None:
    # Was: IndexError from plistlib's XML parser.
    data = b'<?xml version="1.0"?>\n<plist>\n<key>a</key>\n</plist>\n'
    with pytest.raises(ConfigError, match="do not nest correctly") as caught:
        _load(fmt, data)
    assert caught.value.source == SOURCE
    assert caught.value.line == 3


@pytest.mark.parametrize("fmt", ["ios-ats", "trustkit"])
def test_xml_plist_nested_thousands_deep_is_refused_quickly(fmt: str) -> None:
    # Was: seconds of work and memory quadratic in the depth (key paths per level).
    depth = 20_000
    data = b'<plist version="1.0">\n' + b"<array>" * depth + b"</array>" * depth + b"</plist>"
    with pytest.raises(ConfigError, match="more than 64 deep") as caught:
        _load(fmt, data)
    assert caught.value.line == 2


@pytest.mark.parametrize("fmt", ["ios-ats", "trustkit"])
def test_xml_plist_entity_declaration_names_its_line(fmt: str) -> None:
    # Was: refused (never expanded) but without a line.
    data = _with_dtd(_PLIST, b'<!DOCTYPE plist [\n<!ENTITY a "b">\n]>', b"")
    with pytest.raises(ConfigError, match="entity") as caught:
        _load(fmt, data)
    assert caught.value.line == data[: data.index(b"<!ENTITY")].count(b"\n") + 1


def test_plist_without_tskconfiguration_points_at_the_root_dict() -> None:
    # Was: no line at all for errors about the top-level dictionary.
    data = b'<?xml version="1.0"?>\n<plist version="1.0">\n<dict>\n<key>x</key><true/>\n'
    data += b"</dict>\n</plist>\n"
    with pytest.raises(ConfigError, match="no TSKConfiguration") as caught:
        _load("trustkit", data)
    assert caught.value.line == 3


@pytest.mark.parametrize("fmt", ["android", "trustkit-android"])
def test_nsc_xml_declaring_an_unknown_encoding(fmt: str) -> None:
    # Was: LookupError "unknown encoding: ttf-8" from expat.
    data = _NSC.replace(b'encoding="utf-8"', b'encoding="ttf-8"', 1)
    assert data != _NSC
    with pytest.raises(ConfigError, match="encoding") as caught:
        _load(fmt, data)
    assert caught.value.line == 1


def test_nsc_pin_written_twice_is_one_pin() -> None:
    # Was: ConfigError from DomainRule without file or line (the mapper counted the
    # duplicate as a backup pin, the policy did not).
    data = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<network-security-config>\n'
        b"<domain-config>\n<domain>a.example.com</domain>\n<pin-set>\n"
        + f'<pin digest="SHA-256">{_A.b64}</pin>\n'.encode() * 2
        + b"</pin-set>\n</domain-config>\n</network-security-config>\n"
    )
    imported = _load("android", data)
    ids = {(f.id, f.severity) for f in imported_findings(imported)}  # type: ignore[arg-type]
    assert ("missing-backup-pin", "error") in ids
    assert imported.policy.rules[0].pins == (_A,)  # type: ignore[attr-defined]


def test_okhttp_add_call_with_an_empty_argument() -> None:
    # Was: IndexError on `.add("host", , "sha256/...")`.
    source = (
        "val p = CertificatePinner.Builder()\n"
        f'    .add("a.example.com", , "sha256/{_A.b64}")\n'
        "    .build()\n"
    )
    imported = _load("okhttp", source)
    finding = next(f for f in imported.findings if f.id == "okhttp-unreadable-call")  # type: ignore[attr-defined]
    assert finding.line == 2
    assert "empty argument" in finding.message


def test_okhttp_source_that_is_not_utf8_names_the_line() -> None:
    # Was: no line for the undecodable byte.
    data = b'val p = CertificatePinner.Builder()\n// caf\xe9\n.add("a", "b")\n'
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        _load("okhttp", data)
    assert caught.value.line == 2


@pytest.mark.parametrize("separator", ["\v", "\f", "\x1c", "\x85", "\u2028"])
def test_hpkp_line_numbers_count_only_real_line_breaks(separator: str) -> None:
    # Was: str.splitlines() broke lines at \v, \f, \x1c, \x85, U+2028 too, so the
    # reported line disagreed with every editor.
    text = f"# comment{separator}# still the same comment line\nnot a header\n"
    with pytest.raises(ConfigError, match="not an HPKP header line") as caught:
        _load("hpkp", text)
    assert caught.value.line == 2


@pytest.mark.parametrize("fmt", ["android", "trustkit-android"])
def test_nsc_domain_configs_nested_thousands_deep(fmt: str) -> None:
    # Was: RecursionError from the recursive <domain-config> reader.
    depth = 3000
    opening = "".join(f"<domain-config><domain>n{i}.example.com</domain>\n" for i in range(depth))
    data = (
        f"<network-security-config>\n<domain-config><domain>root.example.com</domain><pin-set>"
        f'<pin digest="SHA-256">{_A.b64}</pin><pin digest="SHA-256">{_B.b64}</pin></pin-set>\n'
        + opening
        + "</domain-config>" * (depth + 1)
        + "</network-security-config>"
    )
    with pytest.raises(ConfigError, match="nested more than 32") as caught:
        _load(fmt, data)
    assert caught.value.line == 2 + 32


def test_okhttp_unclosed_add_call_message_stays_short() -> None:
    # Was: the whole rest of the file (here 200 kB) quoted in the finding's message.
    imported = _load("okhttp", 'CertificatePinner.Builder().add("' + "a" * 200_000)
    (finding,) = imported.findings  # type: ignore[attr-defined]
    assert finding.id == "okhttp-unreadable-call"
    assert len(finding.message) < 300


@pytest.mark.timeout(60)
def test_okhttp_many_add_calls_load_in_linear_time() -> None:
    # Was: each call's arguments were read from a copy of the rest of the token list,
    # quadratic in the number of calls. A quadratic reader needs minutes here.
    n = 20_000
    calls = "".join(f'.add("h{i}.example.com", "{_A}", "{_B}")\n' for i in range(n))
    imported = _load("okhttp", "val p = CertificatePinner.Builder()\n" + calls + ".build()\n")
    assert len(imported.policy.rules) == n  # type: ignore[attr-defined]

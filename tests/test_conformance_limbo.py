"""Differential conformance with x509-limbo: pinning never accepts what plain validation refuses.

Every x509-limbo SERVER case that this machine's OpenSSL and Python can express is served on
loopback and judged by plain ``ssl`` and by pinset with four pin sets (see tests/_limbo.py):
the verified chain's keys give plain's outcome, keys off the built path and random keys are
refused, report-only gives plain's outcome. The cases skipped, and why, are in
tests/limbo_skipped.txt; a case skipped for a reason not listed there fails. The summary line
(run, same, refused, skipped) is printed; ``python tests/_limbo.py`` prints it with the table.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
from typing import Any

import pytest
from cryptography import x509

import _limbo

# One run of every case is the module fixture: about a minute on two busy cores.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# The fixture is a verbatim copy of x509-limbo's limbo.json at commit ddc40b47b3e2 (see
# tests/fixtures/README); this is the SHA-256 recorded with the shared copy.
LIMBO_SHA256 = "3713c06566a590e0f22f8373297632e0f6d210f363323119cf1d2f00b717e3bd"


def _missing() -> str | None:
    if _limbo.libfaketime() is None:
        return "libfaketime (Debian: apt-get install faketime)"
    if shutil.which("openssl") is None:
        return "the openssl command (Debian: apt-get install openssl)"
    return None


@pytest.fixture(scope="module")
def report(pytestconfig: pytest.Config) -> _limbo.Report:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the conformance run needs {missing}; .ci/run installs it")
        pytest.skip(f"needs {missing}")
    result = _limbo.run()
    # The summary line goes to the terminal whether or not output is captured (-s).
    terminal = pytestconfig.pluginmanager.getplugin("terminalreporter")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    if terminal is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            terminal.write_line("")
            terminal.write_line(result.summary())
    return result


def test_the_fixture_is_limbo_as_published() -> None:
    data = _limbo.LIMBO.read_bytes()
    assert hashlib.sha256(data).hexdigest() == LIMBO_SHA256
    cases = _limbo.load_cases()
    assert len(cases) == 135
    assert {c["validation_kind"] for c in cases} == {"SERVER"}


def test_no_case_is_weakened(report: _limbo.Report) -> None:
    assert report.weakened() == []


def test_every_pin_set_has_the_outcome_it_must(report: _limbo.Report) -> None:
    # (1) the verified chain's keys and (4) report-only: plain's outcome, with the verdicts
    # "pinned" and "report-only-mismatch"; (2) keys off the path and (3) random keys: refused.
    assert report.differences() == []
    counts = report.counts()
    assert counts["same"] == counts["run"]
    assert counts["refused"] == counts["run"]


def test_refusals_are_certificate_errors(report: _limbo.Report) -> None:
    # Whatever refused, the client saw a certificate error (PinMismatchError is one).
    for case_id, result in report.results.items():
        for name in ("plain", "verified", "off-path", "random", "report-only"):
            outcome = result[name]
            if outcome is not None and not outcome["accepted"]:
                assert outcome["error"].split(":")[0] in (
                    "SSLCertVerificationError",
                    "PinMismatchError",
                ), (case_id, name, outcome["error"])


def test_pin_refusals_come_from_pinset_after_plain_validation(report: _limbo.Report) -> None:
    for case_id, result in report.results.items():
        if not result["plain"]["accepted"]:
            # Validation refused first: pinset never reached a verdict.
            assert result["verified"]["error"].startswith("SSLCertVerificationError"), case_id
            continue
        for name in ("off-path", "random"):
            if result[name] is not None:
                assert result[name]["error"].startswith("PinMismatchError"), (case_id, name)
                assert result[name]["reason"] == "pin-mismatch", (case_id, name)


def test_each_worker_ran_at_its_cases_validation_time(report: _limbo.Report) -> None:
    # libfaketime froze the wall clock the handshakes ran at: the case's time, to the second.
    assert report.clocks
    for when, clock in report.clocks.items():
        assert clock[:19] == when[:19]


def test_skipped_cases_are_the_listed_ones_with_their_reasons(report: _limbo.Report) -> None:
    reasons, listed = _limbo.read_skipped()
    skipped = {c.id: c.skipped for c in report.skipped}
    assert skipped == listed
    assert set(listed.values()) <= set(reasons)
    assert len(report.results) + len(skipped) == len(report.cases) == 135
    # A regression that made most cases unrunnable must not pass for a quiet success.
    assert len(report.results) >= 120


def test_rekeying_kept_openssl_verify_verdicts(report: _limbo.Report) -> None:
    run = [c for c in report.cases if c.id in report.results]
    for case in run:
        assert (case.openssl_original == "ok") == (case.openssl_rekeyed == "ok"), case.id
    # plain ssl and `openssl verify` (one library, same purpose and level) differ only where
    # Python's ssl checks host names more strictly: it never reads the subject's CN and
    # refuses partial wildcards (X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, _NO_PARTIAL_WILDCARDS).
    for case in run:
        plain = report.results[case.id]["plain"]
        if plain["accepted"] != (case.openssl_rekeyed == "ok"):
            assert not plain["accepted"], case.id
            assert "Hostname mismatch" in plain["error"], (case.id, plain["error"])


# -- the re-keyer itself, without TLS or faketime -----------------------------------------------


def _raw(case_id: str) -> dict[str, Any]:
    return next(c for c in _limbo.load_cases() if c["id"] == case_id)


def test_rekeying_changes_only_keys_and_signatures() -> None:
    raw = _raw("rfc5280::nc::permitted-dns-match")
    case = _limbo.rekey(raw, _limbo.KeyPool())
    originals = (
        [_limbo.pem_der(p) for p in raw["trusted_certs"]]
        + [_limbo.pem_der(raw["peer_certificate"])]
        + [_limbo.pem_der(p) for p in raw["untrusted_intermediates"]]
    )
    for old, new in zip(originals, case.trusted + case.served, strict=True):
        a, b = x509.load_der_x509_certificate(old), x509.load_der_x509_certificate(new)
        assert a.serial_number == b.serial_number
        assert a.subject == b.subject
        assert a.issuer == b.issuer
        assert a.not_valid_before_utc == b.not_valid_before_utc
        assert a.not_valid_after_utc == b.not_valid_after_utc
        assert list(a.extensions) == list(b.extensions)
        assert a.signature_algorithm_oid == b.signature_algorithm_oid
        assert _limbo.spki_of(old) != _limbo.spki_of(new)


def test_rekeyed_certificates_are_signed_by_their_rekeyed_issuers() -> None:
    raw = _raw("rfc5280::nc::permitted-dns-match")
    case = _limbo.rekey(raw, _limbo.KeyPool())
    root = x509.load_der_x509_certificate(case.trusted[0])
    certs = [x509.load_der_x509_certificate(d) for d in case.served]
    chain = [*certs, root]
    for child, parent in itertools.pairwise(chain):
        child.verify_directly_issued_by(parent)
    root.verify_directly_issued_by(root)


def test_a_signature_by_no_key_of_the_case_stays_unverifiable() -> None:
    # The intermediate of this case is missing: the leaf's signer is absent, so the leaf keeps
    # its original signature and no re-keyed certificate can have made it.
    raw = _raw("webpki::cryptographydotio-chain-missing-intermediate")
    case = _limbo.rekey(raw, _limbo.KeyPool())
    leaf = x509.load_der_x509_certificate(case.served[0])
    original = x509.load_pem_x509_certificate(raw["peer_certificate"].encode())
    assert leaf.signature == original.signature
    for der in case.trusted + case.served:
        assert not _limbo.signs(x509.load_der_x509_certificate(der).public_key(), leaf)


# -- the judgement, on made-up results ----------------------------------------------------------


def _outcome(accepted: bool, reason: str | None = None) -> dict[str, Any]:
    error = "" if accepted else "PinMismatchError: pin mismatch"
    return {"accepted": accepted, "error": error, "chain": [], "reason": reason}


def _made_up(plain: bool, **variants: dict[str, Any] | None) -> _limbo.Report:
    fine = {
        "verified": _outcome(plain, "pinned" if plain else None),
        "off-path": None,
        "random": _outcome(False, "pin-mismatch"),
        "report-only": _outcome(plain, "report-only-mismatch" if plain else None),
    }
    result = {"id": "made::up", "same_settings": True, "plain": _outcome(plain), **fine}
    result.update(variants)
    case = _limbo.Case(id="made::up", expected="FAILURE", host="example.com", time=_limbo.LIMBO_NOW)
    return _limbo.Report(cases=[case], results={"made::up": result}, clocks={})


def test_a_faithful_run_is_neither_weakened_nor_different() -> None:
    for plain in (True, False):
        report = _made_up(plain)
        assert report.weakened() == []
        assert report.differences() == []


@pytest.mark.parametrize(
    ("plain", "variant", "outcome"),
    [
        (False, "verified", _outcome(True, "pinned")),
        (False, "report-only", _outcome(True, "report-only-mismatch")),
        (True, "random", _outcome(True, "pinned")),
        (True, "off-path", _outcome(True, "pinned")),
    ],
)
def test_an_acceptance_it_must_not_make_is_weakened(
    plain: bool, variant: str, outcome: dict[str, Any]
) -> None:
    report = _made_up(plain, **{variant: outcome})
    assert len(report.weakened()) == 1
    assert variant in report.weakened()[0]
    assert report.counts()["weakened"] == 1


def test_a_refusal_where_plain_accepts_or_a_wrong_verdict_is_a_difference() -> None:
    assert _made_up(True, verified=_outcome(False)).differences()
    assert _made_up(True, verified=_outcome(True, "debug-override")).differences()
    assert _made_up(True, **{"report-only": _outcome(True, "pinned")}).differences()


def test_settings_that_differ_from_plain_ssl_are_weakened() -> None:
    report = _made_up(True)
    report.results["made::up"]["same_settings"] = False
    assert report.weakened() == ["made::up: the pinned context's settings differ from plain ssl's"]

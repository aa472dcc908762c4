"""Turn one posted report (RFC 7469, TrustKit iOS, TrustKit Android, pinset) into one model.

Pure: the receive time is a parameter. Every problem is a :class:`ReportError`
whose message says which field is wrong and why; the HTTP layer answers 400 with it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pinset.collector._extra import kept_extra
from pinset.errors import ConfigError
from pinset.hosts import canonical_host
from pinset.pins import spki_pin
from pinset.reporting._report import REPORTED_REASONS, der_to_pem, known_pin_text

_DER = Encoding.DER

__all__ = [
    "KNOWN_FIELDS",
    "MAX_CHAIN",
    "MAX_PINS",
    "NormalizedReport",
    "ReportError",
    "certificate_facts",
    "certificate_issuer",
    "chain_key",
    "normalize",
    "parse_known_pin",
    "validation_result_name",
]

MAX_CHAIN = 16
MAX_PINS = 64
MAX_TEXT = 255
# NUL and friends: PostgreSQL refuses NUL in text, and no field needs any of them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# TrustKit iOS (TSKTrustEvaluationResult) and Android (PinningValidationResult) agree on these.
_TRUSTKIT_RESULTS = {
    0: "success",
    1: "pin-mismatch",
    2: "chain-not-trusted",
    3: "invalid-parameters",
    4: "user-defined-trust-anchor",
    5: "spki-hash-error",
}
# The names a result may be sent as: TrustKit's, and the reasons pinset's reporter sends.
_RESULT_NAMES = frozenset(_TRUSTKIT_RESULTS.values()) | REPORTED_REASONS

KNOWN_FIELDS = frozenset(
    {
        "date-time",
        "hostname",
        "port",
        "effective-expiration-date",
        "include-subdomains",
        "noted-hostname",
        "served-certificate-chain",
        "validated-certificate-chain",
        "known-pins",
        "app-bundle-id",
        "app-version",
        "app-platform",
        "enforce-pinning",
        "validation-result",
        "known-pins-expiration-date",
        "pinset-reason",
    }
)


class ReportError(ValueError):
    """A report the collector refuses (HTTP 400); ``reason`` is a short metric label."""

    def __init__(self, message: str, reason: str = "invalid-field") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class NormalizedReport:
    """A report in the collector's one model. ``dedup_key`` ignores the report's time."""

    dedup_key: str
    received: int  # epoch seconds
    date_time: int | None  # epoch seconds, as the client said
    hostname: str
    port: int | None
    noted_hostname: str | None
    include_subdomains: bool | None
    effective_expiration_date: str | None
    known_pins_expiration_date: str | None
    app_bundle_id: str | None
    app_version: str | None
    app_platform: str | None
    enforce_pinning: bool | None
    validation_result: str
    served_chain: tuple[str, ...]
    validated_chain: tuple[str, ...]
    known_pins: tuple[str, ...]
    variant: str
    extra: dict[str, Any]
    served_key: str | None = None  # chain_key(served_chain)
    validated_key: str | None = None  # chain_key(validated_chain)

    @property
    def served_chain_key(self) -> str | None:
        """The chain the client was shown: the served one, else (TrustKit iOS) the validated one."""
        return self.served_key or self.validated_key


def chain_key(chain: tuple[str, ...]) -> str | None:
    """SHA-256 hex identifying a chain (of normalised PEM blocks), or None when empty."""
    if not chain:
        return None
    return hashlib.sha256("\n".join(chain).encode()).hexdigest()


def _text(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ReportError(f"field {key!r} is required", "missing-field")
        return None
    if not isinstance(value, str):
        raise ReportError(f"field {key!r} must be a string, not {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise ReportError(f"field {key!r} is longer than {MAX_TEXT} characters")
    if _CONTROL.search(value):
        raise ReportError(f"field {key!r} contains a control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON
        raise ReportError(f"field {key!r} is not valid Unicode") from None
    return value


def _host(value: str, key: str) -> str:
    """``value`` in the one canonical host form (:func:`canonical_host`); ``""`` when blank."""
    if not value.strip():
        return ""
    try:
        return canonical_host(value)
    except ConfigError as exc:
        raise ReportError(f"field {key!r} is not a host name: {exc.message}") from None


def _flag(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ReportError(f"field {key!r} must be true or false, not {value!r}")


def _port(data: dict[str, Any]) -> int | None:
    """The server port, or None when unknown: absent, or 0 (what TrustKit sends then).

    TrustKit iOS fills in 0 when the app gave no port and TrustKit-Android always
    sends 0 (TSKBackgroundReporter.m, PinningTrustManager.java), so 0 means unknown.
    """
    port = data.get("port")
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, int):
        raise ReportError("field 'port' must be an integer")
    if not 0 <= port < 65536:
        raise ReportError(f"field 'port' {port} is not a TCP port (0-65535; 0: unknown)")
    return port or None


def _ascii_digits(text: str) -> str:
    """``text`` with every decimal digit (Unicode category Nd) written in ASCII.

    TrustKit-Android formats its date with android.text.format.DateFormat, which pads
    numbers with String.format(Locale.getDefault(), ...): on a device set to Arabic,
    Persian, Marathi, Bengali … the date arrives as "٢٠٢٦-١١-١٨T١١:٠٠:٠٠Z". Only true
    decimal digits are translated ('²' is no decimal digit and stays an error).
    """
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)


def _instant(text: str, key: str) -> int:
    try:
        ascii_text = _ascii_digits(text)
        parsed = dt.datetime.fromisoformat(ascii_text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ReportError(f"field {key!r} is not an RFC 3339 date-time: {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp())


def _name_text(cert: x509.Certificate, which: str) -> str:
    try:
        name: x509.Name = getattr(cert, which)
        return name.rfc4514_string()
    except Exception:
        return f"(unreadable {which})"


@lru_cache(maxsize=4096)
def _parse_pem(pem: str) -> tuple[str, str, str, str]:
    """``(canonical PEM, sha256/<b64> SPKI pin, subject, issuer)``, or ReportError if unusable.

    Chains repeat across reports (one attacker, one misconfigured server), hence the cache.
    Everything the writer later needs is computed here, so a certificate that parses
    lazily but fails on its key is refused with 400, not found broken at commit time.
    """
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
        der = cert.public_bytes(_DER)
        # Cut from the DER as issued, as every pinset pin is: re-encoding the parsed
        # key would differ for RSA-PSS or explicit-parameter EC keys, and would fail
        # for key types cryptography cannot load, which an attacker's chain may carry.
        pin = str(spki_pin(cert))
    except Exception as exc:  # ValueError, ChainError, … : all mean "not usable"
        raise ReportError(f"a certificate does not parse: {exc}", "bad-certificate") from None
    subject, issuer = _name_text(cert, "subject"), _name_text(cert, "issuer")
    return der_to_pem(der), pin, subject, issuer


def _canonical_pem(pem: str) -> str:
    return _parse_pem(pem)[0]


def certificate_facts(pem: str) -> tuple[str, str]:
    """``(sha256/<b64> SPKI pin, subject)`` of a PEM certificate that :func:`normalize` accepted."""
    _, pin, subject, _ = _parse_pem(pem)
    return pin, subject


def certificate_issuer(pem: str) -> str:
    """The issuer name (RFC 4514) of a PEM certificate that :func:`normalize` accepted."""
    return _parse_pem(pem)[3]


def _chain(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ReportError(f"field {key!r} must be a list of PEM certificates")
    if len(value) > MAX_CHAIN:
        raise ReportError(f"field {key!r} has more than {MAX_CHAIN} certificates")
    try:
        return tuple(_canonical_pem(v) for v in value)
    except ReportError as exc:
        raise ReportError(f"field {key!r}: {exc}", exc.reason) from None


def parse_known_pin(text: str) -> str:
    """``pin-sha256="<b64>"`` (or ``sha256/<b64>``) as canonical ``pin-sha256="<b64>"``."""
    raw = text.strip()
    if raw.lower().startswith(("sha1/", "md5/", "pin-sha1=", "pin-md5=")):
        raise ReportError(f"known pin {text!r} is not SHA-256 (only pin-sha256 exists)", "bad-pin")
    if raw.startswith("pin-sha256="):
        raw = raw[len("pin-sha256=") :].strip().strip('"')
    elif raw.startswith("sha256/"):
        raw = raw[len("sha256/") :]
    try:
        digest = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ReportError(f"known pin {text!r} is not base64", "bad-pin") from None
    if len(digest) != 32:
        raise ReportError(f"known pin {text!r} is not a 32-byte SHA-256 digest", "bad-pin")
    return known_pin_text(base64.b64encode(digest).decode("ascii"))


def validation_result_name(value: Any, pinset_reason: Any = None, enforce: Any = None) -> str:
    """The validation result as a name: TrustKit integers map to words, pinset reasons win.

    A missing result is a pin mismatch (RFC 7469 reports carry none). A pin
    mismatch of a client that did not enforce pinning (``enforce`` is ``False``)
    is ``report-only-mismatch``: that is how TrustKit iOS and Android report in
    report-only mode (result 1 with ``enforce-pinning: false``; they let only
    that failure through), so such reports count with pinset's own.
    """
    if isinstance(pinset_reason, str) and pinset_reason in REPORTED_REASONS:
        return pinset_reason
    if value is None:
        name = "pin-mismatch"
    elif isinstance(value, bool):
        raise ReportError("field 'validation-result' must be an integer or a name")
    elif isinstance(value, int):
        if value not in _TRUSTKIT_RESULTS:
            raise ReportError(f"field 'validation-result' {value} is not a TrustKit result (0–5)")
        name = _TRUSTKIT_RESULTS[value]
    elif isinstance(value, str) and value in _RESULT_NAMES:
        name = value
    else:
        raise ReportError(f"field 'validation-result' {value!r} is not a known result")
    if name == "pin-mismatch" and enforce is False:
        return "report-only-mismatch"
    return name


# TSKBackgroundReporter.m names the Apple platforms; PinningFailureReport.java says ANDROID.
_TRUSTKIT_PLATFORMS = {
    "IOS": "trustkit-ios",
    "TVOS": "trustkit-tvos",
    "WATCHOS": "trustkit-watchos",
    "MACOS": "trustkit-macos",
    "ANDROID": "trustkit-android",
}


def _variant(data: dict[str, Any]) -> str:
    """Which reporter sent ``data``: a short label from a fixed set (a stored column)."""
    if "pinset-reason" in data:
        return "pinset"
    platform = data.get("app-platform")
    if isinstance(platform, str) and platform.upper() in _TRUSTKIT_PLATFORMS:
        return _TRUSTKIT_PLATFORMS[platform.upper()]
    # TrustKit (iOS and OS X) sent no platform before 1.3, but always its app fields.
    if "trustkit-version" in data or "app-bundle-id" in data:
        return "trustkit"
    return "rfc7469"


def normalize(data: Any, *, received: int) -> NormalizedReport:
    """Validate the decoded JSON ``data`` of one report and normalise it."""
    if not isinstance(data, dict):
        raise ReportError("a report is a JSON object", "not-an-object")
    hostname = _text(data, "hostname", required=True)
    assert hostname is not None
    hostname = _host(hostname, "hostname")
    if not hostname:
        raise ReportError("field 'hostname' is empty", "missing-field")
    port = _port(data)
    date_text = _text(data, "date-time")
    date_time = _instant(date_text, "date-time") if date_text else None
    pins_value = data.get("known-pins", [])
    if not isinstance(pins_value, list) or not all(isinstance(p, str) for p in pins_value):
        raise ReportError("field 'known-pins' must be a list of pin-sha256=\"…\" strings")
    if len(pins_value) > MAX_PINS:
        raise ReportError(f"field 'known-pins' has more than {MAX_PINS} pins")
    known_pins = tuple(sorted({parse_known_pin(p) for p in pins_value}))
    # Both chains may be empty: TrustKit iOS reports an unevaluable trust (result 3)
    # with whatever it holds, and a pinset client without a verified chain may have
    # no served one either. The host, pins and result still say that pinning failed.
    served = _chain(data, "served-certificate-chain")
    validated = _chain(data, "validated-certificate-chain")
    noted = _text(data, "noted-hostname")
    noted = _host(noted, "noted-hostname") or None if noted else None
    enforce = _flag(data, "enforce-pinning")
    result = validation_result_name(
        data.get("validation-result"), data.get("pinset-reason"), enforce
    )
    extra = kept_extra({k: v for k, v in data.items() if k not in KNOWN_FIELDS})
    bundle, version, platform = (
        _text(data, "app-bundle-id"),
        _text(data, "app-version"),
        _text(data, "app-platform"),
    )
    # The client's key (host, port, noted host, chains, pins, result) plus the app:
    # one app version's failures never hide in another's row.
    identity = [
        hostname,
        port,
        noted,
        served,
        validated,
        known_pins,
        result,
        bundle,
        version,
        platform,
    ]
    return NormalizedReport(
        dedup_key=hashlib.sha256(json.dumps(identity).encode()).hexdigest(),
        received=received,
        date_time=date_time,
        hostname=hostname,
        port=port,
        noted_hostname=noted,
        include_subdomains=_flag(data, "include-subdomains"),
        effective_expiration_date=_text(data, "effective-expiration-date"),
        known_pins_expiration_date=_text(data, "known-pins-expiration-date"),
        app_bundle_id=bundle,
        app_version=version,
        app_platform=platform,
        enforce_pinning=enforce,
        validation_result=result,
        served_chain=served,
        validated_chain=validated,
        known_pins=known_pins,
        variant=_variant(data),
        extra=extra,
        served_key=chain_key(served),
        validated_key=chain_key(validated),
    )

"""The bundle document: its JSON shape, the canonical payload, and the strict parser.

A bundle is ``{"format": "pinset-bundle/1", "payload": B64URL, "signatures": [...]}``.
The signatures cover the *exact* bytes ``payload`` decodes to, so the parser never
re-serialises anything before the signatures are checked. Pure: no I/O, no clock.
Every shape it does not expect is a :class:`BundleError` with reason ``malformed``
(``too-large`` for a document over :data:`MAX_BUNDLE_BYTES`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from pinset.errors import ConfigError, PinsetError
from pinset.hosts import canonical_host
from pinset.pins import Pin
from pinset.updates._signing import key_der, public_key_from_der

__all__ = [
    "ALGORITHMS",
    "FORMAT",
    "MAX_BUNDLE_BYTES",
    "BundleError",
    "Document",
    "DomainState",
    "Payload",
    "Signature",
    "b64url",
    "canonical_json",
    "format_time",
    "parse_document",
    "parse_payload",
    "unverified_payload",
]

FORMAT = "pinset-bundle/1"
#: The largest document accepted, in bytes (checked before anything is parsed).
MAX_BUNDLE_BYTES = 64 * 1024
ALGORITHMS = ("ed25519", "ecdsa-p256-sha256")

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class BundleError(PinsetError):
    """A bundle refused for ``reason`` (one of :data:`pinset.updates.REASONS`)."""

    def __init__(self, reason: str, message: str, **kwargs: Any) -> None:
        self.reason = reason
        super().__init__(message, **kwargs)


@dataclass(frozen=True, slots=True)
class Signature:
    """One entry of ``signatures``: the signer's SPKI pin, the algorithm, the signature bytes."""

    key: Pin
    alg: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Document:
    """The outer document: the exact payload bytes and the signatures over them."""

    payload: bytes
    signatures: tuple[Signature, ...]


@dataclass(frozen=True, slots=True)
class DomainState:
    """A domain's new state; ``None`` fields leave the embedded value as it is."""

    name: str
    pins: tuple[Pin, ...] | None = None
    include_subdomains: bool | None = None
    expiration: dt.date | None = None
    enforce: bool | None = None


@dataclass(frozen=True, slots=True)
class Payload:
    """The signed content of a bundle."""

    version: int
    issued: dt.datetime
    expires: dt.datetime
    app_id: str | None
    domains: tuple[DomainState, ...]
    disable: tuple[str, ...]
    #: The DER SubjectPublicKeyInfo of every key later bundles may be signed by
    #: (the whole set, not a change); ``None``: the trusted keys stay as they are.
    signing_keys: tuple[bytes, ...] | None = None

    def to_json(self) -> bytes:
        """The canonical JSON bytes of this payload (what :func:`sign_bundle` signs)."""
        content: dict[str, Any] = {
            "version": self.version,
            "issued": format_time(self.issued),
            "expires": format_time(self.expires),
            "app_id": self.app_id,
            "domains": [_domain_json(d) for d in self.domains],
            "disable": list(self.disable),
        }
        if self.signing_keys is not None:
            # Standard base64: the text between a public key PEM's armour lines.
            content["signing_keys"] = [base64.b64encode(k).decode() for k in self.signing_keys]
        return canonical_json(content)


def _domain_json(state: DomainState) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": state.name}
    if state.pins is not None:
        entry["pins"] = [str(pin) for pin in state.pins]
    if state.include_subdomains is not None:
        entry["include_subdomains"] = state.include_subdomains
    if state.expiration is not None:
        entry["expiration"] = state.expiration.isoformat()
    if state.enforce is not None:
        entry["enforce"] = state.enforce
    return entry


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (non-ASCII characters are not escaped)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 4648, section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with whole seconds: ``2027-01-31T12:00:00Z``."""
    if moment.tzinfo is None:
        raise ConfigError(f"{moment!r} has no time zone", hint="pass an aware datetime (UTC)")
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _malformed(message: str) -> BundleError:
    return BundleError("malformed", message, hint="produce the document as docs/updates.md says")


def _unb64url(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise _malformed(f"{what} is not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern excludes these
        raise _malformed(f"{what} is not unpadded base64url") from None
    if b64url(data) != text:  # non-zero trailing bits: two texts for one value
        raise _malformed(f"{what} is not canonical base64url")
    return data


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _malformed(f"duplicate key {key!r}")
        result[key] = value
    return result


def _constant(name: str) -> Any:
    raise _malformed(f"{name} is not JSON")


def _json(data: bytes, what: str) -> Any:
    try:
        text = data.decode("utf-8")
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except UnicodeDecodeError:
        raise _malformed(f"{what} is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, BundleError):
            raise
        raise _malformed(f"{what} is not JSON") from None


def _keys(
    obj: Any, what: str, required: AbstractSet[str], optional: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _malformed(f"{what} is not an object")
    missing = required - obj.keys()
    unknown = obj.keys() - required - optional
    if missing:
        raise _malformed(f"{what} lacks {', '.join(sorted(missing))}")
    if unknown:
        raise _malformed(f"{what} has unknown key(s) {', '.join(sorted(unknown))}")
    return obj


def parse_document(data: bytes) -> Document:
    """The outer document of ``data``; refuses anything over the size limit or off the shape."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(
            "too-large",
            f"the bundle is {len(data)} bytes; the limit is {MAX_BUNDLE_BYTES}",
            hint="a bundle carries pins, not certificates: remove what is not needed",
        )
    doc = _keys(_json(data, "the bundle"), "the bundle", {"format", "payload", "signatures"})
    if doc["format"] != FORMAT:
        raise _malformed(f"format is {doc['format']!r}, not {FORMAT!r}")
    payload = _unb64url(doc["payload"], "payload")
    entries = doc["signatures"]
    if not isinstance(entries, list) or not entries:
        raise _malformed("signatures is not a non-empty list")
    signatures: list[Signature] = []
    for index, entry in enumerate(entries):
        what = f"signatures[{index}]"
        entry = _keys(entry, what, {"key", "alg", "sig"})
        if entry["alg"] not in ALGORITHMS:
            raise _malformed(f"{what}.alg is {entry['alg']!r}, not one of {', '.join(ALGORITHMS)}")
        if not isinstance(entry["key"], str):
            raise _malformed(f"{what}.key is not a pin")
        try:
            key = Pin.parse(entry["key"])
        except ConfigError:
            raise _malformed(f"{what}.key is not a sha256/ SPKI pin") from None
        if str(key) != entry["key"]:
            raise _malformed(f"{what}.key is not written as {str(key)!r}")
        signatures.append(Signature(key, entry["alg"], _unb64url(entry["sig"], f"{what}.sig")))
    return Document(payload, tuple(signatures))


def _time(value: Any, what: str) -> dt.datetime:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise _malformed(f"{what} is not an RFC 3339 UTC time like 2027-01-31T12:00:00Z")
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise _malformed(f"{what} is not a real time: {value!r}") from None


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _malformed(f"{what} is not a host name")
    prefix = "*." if value.startswith("*.") else ""
    try:
        name = prefix + canonical_host(value[len(prefix) :])
    except (ConfigError, ValueError):
        raise _malformed(f"{what} {value!r} is not a host name") from None
    if name != value:
        raise _malformed(f"{what} {value!r} is not canonical (write {name!r})")
    return name


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise _malformed(f"{what} is not true or false")
    return value


def _domain(obj: Any, what: str) -> DomainState:
    obj = _keys(obj, what, {"name"}, {"pins", "include_subdomains", "expiration", "enforce"})
    name = _name(obj["name"], f"{what}.name")
    pins: tuple[Pin, ...] | None = None
    if "pins" in obj:
        if not isinstance(obj["pins"], list) or not all(isinstance(p, str) for p in obj["pins"]):
            raise _malformed(f"{what}.pins is not a list of pins")
        try:
            pins = tuple(Pin.parse(p) for p in obj["pins"])
        except ConfigError:
            raise _malformed(f"{what}.pins holds something that is not a sha256/ pin") from None
    expiration = None
    if "expiration" in obj:
        value = obj["expiration"]
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise _malformed(f"{what}.expiration is not a yyyy-mm-dd date")
        try:
            expiration = dt.date.fromisoformat(value)
        except ValueError:
            raise _malformed(f"{what}.expiration is not a real date: {value!r}") from None
    return DomainState(
        name,
        pins,
        _bool(obj["include_subdomains"], f"{what}.include_subdomains")
        if "include_subdomains" in obj
        else None,
        expiration,
        _bool(obj["enforce"], f"{what}.enforce") if "enforce" in obj else None,
    )


def parse_payload(data: bytes) -> Payload:
    """The payload of ``data`` (the bytes the signatures cover), checked field by field."""
    obj = _keys(
        _json(data, "the payload"),
        "the payload",
        {"version", "issued", "expires", "app_id", "domains", "disable"},
        {"signing_keys"},
    )
    version = obj["version"]
    if type(version) is not int or not 0 < version < 2**63:
        raise _malformed("version is not an integer from 1 to 2**63-1")
    issued = _time(obj["issued"], "issued")
    expires = _time(obj["expires"], "expires")
    if expires <= issued:
        raise _malformed("expires is not after issued")
    app_id = obj["app_id"]
    if app_id is not None and (not isinstance(app_id, str) or not app_id):
        raise _malformed("app_id is neither a non-empty string nor null")
    if not isinstance(obj["domains"], list):
        raise _malformed("domains is not a list")
    domains = tuple(_domain(d, f"domains[{i}]") for i, d in enumerate(obj["domains"]))
    if len({d.name for d in domains}) != len(domains):
        raise _malformed("a domain appears twice in domains")
    if not isinstance(obj["disable"], list):
        raise _malformed("disable is not a list")
    disable = tuple(_name(n, f"disable[{i}]") for i, n in enumerate(obj["disable"]))
    if len(set(disable)) != len(disable):
        raise _malformed("a domain appears twice in disable")
    signing_keys = _signing_keys(obj["signing_keys"]) if "signing_keys" in obj else None
    return Payload(version, issued, expires, app_id, domains, disable, signing_keys)


def _signing_keys(value: Any) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not value:
        raise _malformed("signing_keys is not a non-empty list (an empty one would trust no key)")
    keys: list[bytes] = []
    for index, text in enumerate(value):
        what = f"signing_keys[{index}]"
        if not isinstance(text, str) or not _B64.fullmatch(text):
            raise _malformed(f"{what} is not standard base64")
        der = base64.b64decode(text)
        if base64.b64encode(der).decode() != text:
            raise _malformed(f"{what} is not canonical base64")
        try:
            key = public_key_from_der(der)
        except ConfigError as exc:
            raise _malformed(f"{what}: {exc.message}") from None
        if key_der(key) != der:
            raise _malformed(f"{what} is not a DER SubjectPublicKeyInfo in its one encoding")
        if der in keys:
            raise _malformed(f"{what} appears twice in signing_keys")
        keys.append(der)
    return tuple(keys)


def unverified_payload(data: bytes) -> Payload:
    """The payload of the bundle ``data`` *without checking any signature*.

    For indexing bundles one publishes (the collector maps each file to its app and
    version); never for deciding whether to apply one: that is :func:`verify_bundle`.
    A document or payload off the shape is a :class:`BundleError` (``malformed`` or
    ``too-large``).
    """
    return parse_payload(parse_document(data).payload)

"""x509-limbo, differentially: pinset's enforcement against plain validation, case by case.

x509-limbo (tests/fixtures/x509-limbo/limbo.json) gives, per case, trusted roots, untrusted
intermediates, a peer certificate, a peer name and a validation time, but no private keys:
no TLS server can present its certificates as they are. So each case is *re-keyed*: every
distinct key of the case is replaced by a fresh key of the same type and size, and every
certificate is re-signed, byte for byte, by the new key of whichever key of the case signed
it originally. Only the SubjectPublicKeyInfo and the signature change; serial, names,
validity, extensions and both signature-algorithm fields keep their original bytes. A
certificate that no key of the case signed keeps its original signature (still signed by
nobody present). ``openssl verify`` then judges the original and the re-keyed case at the
case's time with the same options; a case whose verdict re-keying changed is skipped
(``rekey-changes-verdict``), so the cases that run are the limbo cases as OpenSSL sees them.

Each run case is served by a loopback :class:`~pinset.testing.TLSServer` (peer, then the
untrusted intermediates) and judged by five handshakes with trust = the case's trusted
certificates and server_hostname = the case's peer name: plain ``ssl`` (the reference), and
pinset with (1) the SPKIs of the verified chain (every key of the case when plain refuses),
(2) the SPKIs of the case's certificates that are not on the built path, (3) random pins,
(4) random pins in report-only mode. Python's ``ssl`` cannot set the verification time, so
the handshakes of each validation time run in a subprocess under libfaketime with the wall
clock frozen at that time (the monotonic clock stays real, for timeouts).

Run ``python tests/_limbo.py`` for the summary and the per-case table; the test is
tests/test_conformance_limbo.py, the skipped cases and their reasons tests/limbo_skipped.txt.
"""

from __future__ import annotations

import base64
import datetime as dt
import glob
import hashlib
import ipaddress
import json
import os
import random
import socket
import ssl
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning

from pinset import DomainRule, Pin, Policy, ssl_context
from pinset.testing import TLSServer

with warnings.catch_warnings():
    # cryptography deprecates DSA on attribute access; limbo has DSA keys to re-key.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    DSAPrivateKey, DSAPublicKey = dsa.DSAPrivateKey, dsa.DSAPublicKey
    DSAParameterNumbers = dsa.DSAParameterNumbers

HERE = Path(__file__).resolve().parent
LIMBO = HERE / "fixtures" / "x509-limbo" / "limbo.json"
SKIPPED = HERE / "limbo_skipped.txt"
# limbo leaves the time of most cases open ("now"); its certificates were made for the
# day of the commit the fixture comes from, so that instant stands in for "now".
LIMBO_NOW = dt.datetime(2023, 12, 2, 19, 35, 3, tzinfo=dt.timezone.utc)
_DER = 2  # _ssl.ENCODING_DER


class Unrunnable(Exception):
    """A case this machine's OpenSSL and Python cannot express; ``reason`` is its key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------- DER, just enough to re-sign


def _element(der: bytes, at: int) -> tuple[int, int]:
    """(start of the content, end) of the DER element at offset ``at``."""
    if der[at] & 0x1F == 0x1F:
        raise Unrunnable("rekey-impossible", "a high tag number")
    first = der[at + 1]
    start = at + 2
    if first == 0x80:
        raise Unrunnable("rekey-impossible", "an indefinite length")
    if first & 0x80:
        size = first & 0x7F
        length = int.from_bytes(der[start : start + size], "big")
        start += size
    else:
        length = first
    end = start + length
    if end > len(der):
        raise Unrunnable("rekey-impossible", "an element longer than the certificate")
    return start, end


def _children(der: bytes, start: int, end: int) -> list[bytes]:
    out = []
    while start < end:
        _, stop = _element(der, start)
        out.append(der[start:stop])
        start = stop
    return out


def _encode(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


def _parts(cert: bytes) -> tuple[list[bytes], int, bytes, bytes]:
    """TBS fields, the index of its SubjectPublicKeyInfo, the signature algorithm and value."""
    start, end = _element(cert, 0)
    tbs, algorithm, signature = _children(cert, start, end)
    fields = _children(tbs, *_element(tbs, 0))
    return fields, (6 if fields[0][0] == 0xA0 else 5), algorithm, signature


def spki_of(cert: bytes) -> bytes:
    """The SubjectPublicKeyInfo of a DER certificate, as its bytes are."""
    fields, index, _, _ = _parts(cert)
    return fields[index]


# ---------------------------------------------------------------- keys and signatures

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | DSAPrivateKey
)


def _key_spec(public: Any) -> tuple[Any, ...]:
    if isinstance(public, rsa.RSAPublicKey):
        exponent = public.public_numbers().e
        if exponent not in (3, 65537):
            raise Unrunnable("rekey-impossible", f"RSA exponent {exponent}")
        return ("rsa", public.key_size, exponent)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ("ec", public.curve.name)
    if isinstance(public, ed25519.Ed25519PublicKey):
        return ("ed25519",)
    if isinstance(public, ed448.Ed448PublicKey):
        return ("ed448",)
    if isinstance(public, DSAPublicKey):
        numbers = public.parameters().parameter_numbers()
        return ("dsa", numbers.p, numbers.q, numbers.g)
    raise Unrunnable("rekey-impossible", f"a {type(public).__name__} key")


def _generate(spec: tuple[Any, ...]) -> PrivateKey:
    kind = spec[0]
    if kind == "rsa":
        return rsa.generate_private_key(spec[2], spec[1])
    if kind == "ec":
        return ec.generate_private_key(ec.get_curve_for_oid(_CURVES[spec[1]])())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ed448":
        return ed448.Ed448PrivateKey.generate()
    # Within the original's group: generating 3072-bit DSA parameters takes seconds.
    return DSAParameterNumbers(*spec[1:]).parameters().generate_private_key()


_CURVES = {
    "secp192r1": ec.EllipticCurveOID.SECP192R1,
    "secp224r1": ec.EllipticCurveOID.SECP224R1,
    "secp256r1": ec.EllipticCurveOID.SECP256R1,
    "secp384r1": ec.EllipticCurveOID.SECP384R1,
    "secp521r1": ec.EllipticCurveOID.SECP521R1,
}


class KeyPool:
    """Fresh keys by type, reused across cases: the n-th key of a type in every case is one key."""

    def __init__(self) -> None:
        self._keys: dict[tuple[Any, ...], list[PrivateKey]] = {}

    def key(self, spec: tuple[Any, ...], index: int) -> PrivateKey:
        keys = self._keys.setdefault(spec, [])
        while len(keys) <= index:
            if spec[0] == "ec" and spec[1] not in _CURVES:
                raise Unrunnable("rekey-impossible", f"curve {spec[1]}")
            keys.append(_generate(spec))
        return keys[index]


def signs(public: Any, cert: x509.Certificate) -> bool:
    """Whether ``public`` made the signature of ``cert`` (with the algorithm it names)."""
    try:
        algorithm = cert.signature_hash_algorithm
        params = cert.signature_algorithm_parameters
        data, signature = cert.tbs_certificate_bytes, cert.signature
        if isinstance(public, rsa.RSAPublicKey) and algorithm is not None:
            public.verify(signature, data, params, algorithm)  # type: ignore[arg-type]
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, params)  # type: ignore[arg-type]
        elif isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public.verify(signature, data)
        elif isinstance(public, DSAPublicKey) and algorithm is not None:
            public.verify(signature, data, algorithm)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        return False
    return True


def _sign(key: PrivateKey, data: bytes, cert: x509.Certificate) -> bytes:
    algorithm = cert.signature_hash_algorithm
    params = cert.signature_algorithm_parameters
    if isinstance(key, rsa.RSAPrivateKey) and algorithm is not None:
        return key.sign(data, params, algorithm)  # type: ignore[arg-type]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, params)  # type: ignore[arg-type]
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key.sign(data)
    if isinstance(key, DSAPrivateKey) and algorithm is not None:
        return key.sign(data, algorithm)
    raise Unrunnable("rekey-impossible", "a signature this test cannot make")


def _spki(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# ---------------------------------------------------------------- cases


@dataclass
class Case:
    """One limbo case, re-keyed, ready to serve; or the reason it cannot run."""

    id: str
    expected: str  # limbo's expected_result: SUCCESS or FAILURE
    host: str
    time: dt.datetime
    trusted: list[bytes] = field(default_factory=list)  # re-keyed DER
    served: list[bytes] = field(default_factory=list)  # peer first, then the intermediates
    key_pem: bytes = b""
    skipped: str | None = None  # a reason key of limbo_skipped.txt
    detail: str = ""
    openssl_original: str = ""  # `openssl verify` on the limbo certificates
    openssl_rekeyed: str = ""
    original_trusted: list[bytes] = field(default_factory=list)
    original_served: list[bytes] = field(default_factory=list)

    @property
    def spkis(self) -> list[bytes]:
        """The SPKI of every certificate of the case, trusted and served, without repeats."""
        return list(dict.fromkeys(spki_of(c) for c in self.trusted + self.served))


def load_cases(path: Path = LIMBO) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(path.read_text())["testcases"]
    return cases


def pem_der(pem: str) -> bytes:
    body = "".join(line for line in pem.strip().splitlines() if "-----" not in line)
    return base64.b64decode(body)


def _load(der: bytes) -> x509.Certificate:
    with warnings.catch_warnings():
        # Negative serials (rfc5280::serial::negative) and DSA keys warn on load.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_der_x509_certificate(der)


def _public_key(cert: x509.Certificate) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return cert.public_key()


def check_expressible(raw: dict[str, Any]) -> None:
    """Raise :class:`Unrunnable` when Python's ``ssl`` cannot ask for what the case asks."""
    if raw["validation_kind"] != "SERVER":
        raise Unrunnable("client-validation")
    if raw.get("max_chain_depth") is not None:
        raise Unrunnable("max-chain-depth", f"max_chain_depth = {raw['max_chain_depth']}")
    if raw.get("key_usage"):
        raise Unrunnable("key-usage", f"key_usage = {raw['key_usage']}")
    if raw.get("extended_key_usage") not in (None, ["serverAuth"]):
        raise Unrunnable("extended-key-usage", f"{raw['extended_key_usage']}")
    if raw.get("signature_algorithms"):
        raise Unrunnable("signature-algorithms")
    name = raw.get("expected_peer_name")
    if not name or name["kind"] not in ("DNS", "IP"):
        raise Unrunnable("peer-name", f"{name}")
    if not raw["trusted_certs"]:
        raise Unrunnable("no-trust-anchor")


def rekey(raw: dict[str, Any], pool: KeyPool) -> Case:
    """The case with every key replaced and every certificate re-signed (see the module doc)."""
    time = dt.datetime.fromisoformat(raw["validation_time"]) if raw["validation_time"] else None
    case = Case(
        id=raw["id"],
        expected=raw["expected_result"],
        host=raw["expected_peer_name"]["value"] if raw.get("expected_peer_name") else "",
        time=time or LIMBO_NOW,
    )
    trusted = [pem_der(p) for p in raw["trusted_certs"]]
    served = [pem_der(raw["peer_certificate"])] + [
        pem_der(p) for p in raw["untrusted_intermediates"]
    ]
    everything = trusted + served
    parsed = {der: _load(der) for der in everything}
    if isinstance(_public_key(parsed[served[0]]), DSAPublicKey):
        # TLS 1.3 has no DSA, and Python's TLS 1.2 client offers no DSS cipher.
        raise Unrunnable("tls-server-key", "the peer's key is DSA")
    publics: dict[bytes, Any] = {}
    for der in everything:
        publics.setdefault(spki_of(der), _public_key(parsed[der]))
    counts: Counter[tuple[Any, ...]] = Counter()
    new_keys: dict[bytes, PrivateKey] = {}
    for spki, public in publics.items():
        spec = _key_spec(public)
        new_keys[spki] = pool.key(spec, counts[spec])
        counts[spec] += 1

    def resign(der: bytes) -> bytes:
        cert = parsed[der]
        fields, index, algorithm, signature = _parts(der)
        fields[index] = _spki(new_keys[spki_of(der)])
        tbs = _encode(0x30, b"".join(fields))
        signer = next((s for s, pub in publics.items() if signs(pub, cert)), None)
        if signer is not None:
            signature = _encode(0x03, b"\x00" + _sign(new_keys[signer], tbs, cert))
        return _encode(0x30, tbs + algorithm + signature)

    case.trusted = [resign(der) for der in trusted]
    case.served = [resign(der) for der in served]
    case.key_pem = new_keys[spki_of(served[0])].private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    case.original_trusted, case.original_served = trusted, served
    return case


def check_rekeying(case: Case) -> None:
    """``openssl verify`` on the original and the re-keyed case; skip it when they disagree."""
    case.openssl_original = openssl_verify(case, case.original_trusted, case.original_served)
    case.openssl_rekeyed = openssl_verify(case, case.trusted, case.served)
    if (case.openssl_original == "ok") != (case.openssl_rekeyed == "ok"):
        case.skipped = "rekey-changes-verdict"
        case.detail = f"openssl verify: {case.openssl_original} -> {case.openssl_rekeyed}"


def _pem(ders: Iterable[bytes]) -> str:
    return "".join(
        "-----BEGIN CERTIFICATE-----\n"
        + "\n".join(
            base64.b64encode(d).decode()[i : i + 64] for i in range(0, len(base64.b64encode(d)), 64)
        )
        + "\n-----END CERTIFICATE-----\n"
        for d in ders
    )


def openssl_verify(case: Case, trusted: Sequence[bytes], served: Sequence[bytes]) -> str:
    """``openssl verify`` at the case's time, as the TLS client checks a server: ``ok`` or why not.

    ``-purpose sslserver`` and ``-auth_level 2`` are what an OpenSSL TLS client at the default
    security level (Debian's ``SECLEVEL=2``) asks of a server's chain.
    """
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, ders in (("trusted", trusted), ("untrusted", served[1:]), ("peer", served[:1])):
            paths[name] = os.path.join(tmp, f"{name}.pem")
            Path(paths[name]).write_text(_pem(ders))
        host = ["-verify_ip" if _is_ip(case.host) else "-verify_hostname", case.host]
        untrusted = ["-untrusted", paths["untrusted"]] if served[1:] else []
        argv = [
            "openssl", "verify", "-no-CApath", "-no-CAstore", "-CAfile", paths["trusted"],
            *untrusted, "-attime", str(int(case.time.timestamp())), "-purpose", "sslserver",
            "-auth_level", "2", *host, paths["peer"],
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return "ok"
    errors = [
        line for line in done.stdout.splitlines() + done.stderr.splitlines() if "error" in line
    ]
    return errors[0].split(": ", 1)[-1].strip() if errors else f"exit {done.returncode}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def prepare(raws: Sequence[dict[str, Any]], workers: int = 4) -> list[Case]:
    """Every case re-keyed and checked with ``openssl verify``, or skipped with its reason."""
    pool = KeyPool()
    cases = []
    for raw in raws:
        try:
            check_expressible(raw)
            cases.append(rekey(raw, pool))
        except Unrunnable as why:
            cases.append(
                Case(
                    id=raw["id"],
                    expected=raw["expected_result"],
                    host="",
                    time=LIMBO_NOW,
                    skipped=why.reason,
                    detail=why.detail,
                )
            )
    with ThreadPoolExecutor(max_workers=workers) as threads:
        list(threads.map(check_rekeying, [c for c in cases if not c.skipped]))
    return cases


# ---------------------------------------------------------------- handshakes (the subprocess)


@dataclass(frozen=True)
class Outcome:
    """One handshake: accepted (with the verified chain) or refused (and how)."""

    accepted: bool
    error: str = ""
    chain: tuple[bytes, ...] = ()
    reason: str | None = None  # pinset's verdict reason, when it reached one

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "error": self.error,
            "chain": [base64.b64encode(c).decode() for c in self.chain],
            "reason": self.reason,
        }


def _handshake(ctx: ssl.SSLContext, port: int, host: str, heard: list[str]) -> Outcome:
    heard.clear()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                chain = tls._sslobj.get_verified_chain() or ()  # type: ignore[attr-defined]
                verdict = getattr(tls, "pinset_verdict", None)
                return Outcome(
                    True,
                    chain=tuple(c.public_bytes(_DER) for c in chain),
                    reason=verdict.reason if verdict is not None else None,
                )
        except ssl.SSLError as exc:
            detail = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            return Outcome(False, f"{type(exc).__name__}: {detail}", reason=_last(heard))
        except OSError as exc:
            return Outcome(False, f"{type(exc).__name__}: {exc}", reason=_last(heard))


def _last(heard: list[str]) -> str | None:
    return heard[-1] if heard else None


def _random_pins(case_id: str) -> list[bytes]:
    rng = random.Random(case_id)  # derandomised: the same pins on every run
    return [bytes(rng.getrandbits(8) for _ in range(32)) for _ in range(2)]


def run_case(case: Case) -> dict[str, Any]:
    """The five handshakes of one case against one loopback server (see the module doc)."""
    trusted = _pem(case.trusted)
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    plain.minimum_version = ssl.TLSVersion.TLSv1_2
    plain.load_verify_locations(cadata=trusted)
    heard: list[str] = []

    def pinned(digests: Iterable[bytes], enforce: bool = True) -> ssl.SSLContext:
        rule = DomainRule(
            name=case.host,
            pins=tuple(Pin(d) for d in digests),
            enforce=enforce,
            allow_single_pin=True,
        )
        return ssl_context(
            Policy(rules=(rule,)),
            cadata=trusted,
            observers=[lambda verdict, _conn: heard.append(verdict.reason)],
        )

    def digests(spkis: Iterable[bytes]) -> list[bytes]:
        return [hashlib.sha256(s).digest() for s in dict.fromkeys(spkis)]

    probe = pinned(_random_pins(case.id))
    same_settings = (
        probe.verify_flags == plain.verify_flags
        and probe.verify_mode == plain.verify_mode
        and probe.check_hostname == plain.check_hostname
        and probe.minimum_version == plain.minimum_version
        and probe.options & ~ssl.OP_NO_RENEGOTIATION == plain.options & ~ssl.OP_NO_RENEGOTIATION
    )
    result: dict[str, Any] = {"id": case.id, "same_settings": same_settings}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        served = [x509.load_der_x509_certificate(d) for d in case.served]
    key = serialization.load_pem_private_key(case.key_pem, None)
    try:
        server = TLSServer(served, key, mode="silent")  # type: ignore[arg-type]
    except ssl.SSLError as exc:
        result["skipped"] = "server-cannot-load"
        result["detail"] = f"OpenSSL will not serve the peer certificate: {exc.reason}"
        return result
    with server:
        base = _handshake(plain, server.port, case.host, heard)
        result["plain"] = base.as_dict()
        if not base.accepted and not base.error.startswith("SSLCertVerificationError"):
            # No certificate verdict to compare: the handshake failed before one (a P-192
            # peer key, say, which no signature algorithm of TLS 1.2/1.3 here can use).
            result["skipped"] = "handshake-fails"
            result["detail"] = f"plain ssl: {base.error}"
            return result
        path = {spki_of(c) for c in base.chain}
        # Plain refused: no path was built, so variant 1 pins every key the case has.
        chain_pins = digests(spki_of(c) for c in base.chain) if base.accepted else None
        off_path = [s for s in case.spkis if s not in path] if base.accepted else []
        variants: dict[str, tuple[list[bytes], bool]] = {
            "verified": (chain_pins or digests(case.spkis), True),
            "off-path": (digests(off_path), True),
            "random": (_random_pins(case.id), True),
            "report-only": (_random_pins(case.id), False),
        }
        for name, (pins, enforce) in variants.items():
            if not pins:
                result[name] = None  # nothing offered off the built path
                continue
            result[name] = _handshake(
                pinned(pins, enforce), server.port, case.host, heard
            ).as_dict()
    return result


def _case_json(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "expected": case.expected,
        "host": case.host,
        "time": case.time.isoformat(),
        "trusted": [base64.b64encode(c).decode() for c in case.trusted],
        "served": [base64.b64encode(c).decode() for c in case.served],
        "key_pem": case.key_pem.decode(),
    }


def _case_of(data: dict[str, Any]) -> Case:
    return Case(
        id=data["id"],
        expected=data["expected"],
        host=data["host"],
        time=dt.datetime.fromisoformat(data["time"]),
        trusted=[base64.b64decode(c) for c in data["trusted"]],
        served=[base64.b64decode(c) for c in data["served"]],
        key_pem=data["key_pem"].encode(),
    )


def worker_main(path: str) -> None:
    """Subprocess entry: run the cases in the JSON file ``path``, print the results as JSON."""
    cases = [_case_of(c) for c in json.loads(Path(path).read_text())]
    results = [run_case(c) for c in cases]
    print(json.dumps({"clock": dt.datetime.now(dt.timezone.utc).isoformat(), "results": results}))


# ---------------------------------------------------------------- the run (the parent)


def libfaketime() -> str | None:
    """The path of libfaketime (Debian's ``libfaketime`` package), or ``None``."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    found += sorted(glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    return found[0] if found else None


# Warnings are errors, as in the suite, except cryptography's deprecation of non-positive
# serials (rfc5280::serial::*): pinset's failure message parses the served certificates, and
# cryptography warns on each such parse (see docs/security.md).
_WARNINGS = ("-W", "error", "-W", "ignore::cryptography.utils.CryptographyDeprecationWarning")


def _run_group(when: dt.datetime, cases: list[Case], library: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cases.json")
        Path(path).write_text(json.dumps([_case_json(c) for c in cases]))
        env = dict(os.environ)
        env.update(
            LD_PRELOAD=library,
            # Absolute and without '@': the wall clock stands still at the case's time.
            FAKETIME=when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            FAKETIME_DONT_FAKE_MONOTONIC="1",
            TZ="UTC",
            PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]),
        )
        done = subprocess.run(
            [sys.executable, *_WARNINGS, str(Path(__file__)), "--worker", path],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
    if done.returncode != 0:
        raise RuntimeError(f"limbo worker at {when} failed:\n{done.stderr[-4000:]}")
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@dataclass
class Report:
    """The run: every case's results, the skipped ones with their reasons, and the judgement."""

    cases: list[Case]
    results: dict[str, dict[str, Any]]
    clocks: dict[str, str]  # validation time -> the wall clock the worker saw

    @property
    def skipped(self) -> list[Case]:
        return [c for c in self.cases if c.skipped]

    def weakened(self) -> list[str]:
        """Every way in which pinset accepted what it must not, one line each (must be empty)."""
        bad = []
        for case_id, r in self.results.items():
            plain = r["plain"]["accepted"]
            if not r["same_settings"]:
                bad.append(f"{case_id}: the pinned context's settings differ from plain ssl's")
            for name in ("verified", "report-only"):
                if r[name]["accepted"] and not plain:
                    bad.append(f"{case_id}: {name} pins accepted what plain ssl refused")
            for name in ("off-path", "random"):
                if r[name] is not None and r[name]["accepted"]:
                    bad.append(f"{case_id}: {name} pins accepted")
        return bad

    def differences(self) -> list[str]:
        """Every variant whose outcome is not the one it must have, one line each."""
        out = []
        for case_id, r in self.results.items():
            plain = r["plain"]["accepted"]
            for name, expected, reason in (
                ("verified", plain, "pinned"),
                ("report-only", plain, "report-only-mismatch"),
                ("off-path", False, "pin-mismatch"),
                ("random", False, "pin-mismatch"),
            ):
                got = r[name]
                if got is None:
                    continue
                if got["accepted"] != expected:
                    out.append(f"{case_id}: {name} {_word(got['accepted'])}, plain {_word(plain)}")
                elif plain and got["reason"] != reason:
                    out.append(f"{case_id}: {name} verdict {got['reason']}, expected {reason}")
        return out

    def limbo_disagreements(self) -> list[str]:
        """Cases where plain ssl (OpenSSL) and limbo's expected result differ: information."""
        by_id = {c.id: c for c in self.cases}
        out = []
        for case_id, r in sorted(self.results.items()):
            plain = r["plain"]["accepted"]
            if plain != (by_id[case_id].expected == "SUCCESS"):
                out.append(
                    f"{case_id}: limbo expects {by_id[case_id].expected}, plain ssl "
                    f"{_word(plain)}" + ("" if plain else f" ({r['plain']['error']})")
                )
        return out

    def counts(self) -> dict[str, int]:
        run = len(self.results)
        diffs = {line.split(":", 1)[0] for line in self.differences()}
        same = sum(
            1
            for i, r in self.results.items()
            if i not in diffs
            and all(r[v]["accepted"] == r["plain"]["accepted"] for v in ("verified", "report-only"))
        )
        refused = sum(
            1
            for r in self.results.values()
            if all(r[v] is None or not r[v]["accepted"] for v in ("off-path", "random"))
        )
        return {
            "cases": len(self.cases),
            "run": run,
            "plain-accepts": sum(1 for r in self.results.values() if r["plain"]["accepted"]),
            "same": same,
            "refused": refused,
            "off-path-run": sum(1 for r in self.results.values() if r["off-path"] is not None),
            "skipped": len(self.skipped),
            "weakened": len(self.weakened()),
            "limbo-disagreements": len(self.limbo_disagreements()),
        }

    def summary(self) -> str:
        c = self.counts()
        return (
            f"x509-limbo: {c['cases']} cases, run {c['run']} (plain accepts {c['plain-accepts']}), "
            f"same {c['same']}, refused {c['refused']} (off-path pins in {c['off-path-run']}), "
            f"skipped {c['skipped']}, weakened {c['weakened']}, "
            f"limbo-vs-plain disagreements {c['limbo-disagreements']}"
        )


def _word(accepted: bool) -> str:
    return "accepts" if accepted else "refuses"


_BATCH = 27


def run(
    raws: Sequence[dict[str, Any]] | None = None,
    *,
    library: str | None = None,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Prepare every case, run the runnable ones grouped by validation time, judge them."""
    library = library or libfaketime()
    if library is None:
        raise RuntimeError("libfaketime is not installed (Debian: apt-get install faketime)")
    cases = prepare(raws if raws is not None else load_cases())
    groups: dict[tuple[dt.datetime, int], list[Case]] = {}
    for case in cases:
        if not case.skipped:
            # At most _BATCH cases a worker, so that the big "now" group spreads over the cores.
            batch = 0
            while len(groups.get((case.time, batch), ())) >= _BATCH:
                batch += 1
            groups.setdefault((case.time, batch), []).append(case)
    results: dict[str, dict[str, Any]] = {}
    clocks: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            key: pool.submit(_run_group, key[0], group, library) for key, group in groups.items()
        }
        for (when, batch), future in sorted(futures.items()):
            out = future.result()
            clocks[when.isoformat()] = out["clock"]
            by_id = {c.id: c for c in groups[when, batch]}
            for r in out["results"]:
                if r.get("skipped"):
                    by_id[r["id"]].skipped, by_id[r["id"]].detail = r["skipped"], r["detail"]
                else:
                    results[r["id"]] = r
            if progress is not None:
                progress(f"{when.isoformat()}: {len(out['results'])} cases")
    return Report(cases=cases, results=results, clocks=clocks)


def read_skipped(path: Path = SKIPPED) -> tuple[dict[str, str], dict[str, str]]:
    """(reason key -> its explanation, case id -> reason key) from tests/limbo_skipped.txt."""
    reasons: dict[str, str] = {}
    cases: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("reason "):
            key, _, why = text.removeprefix("reason ").partition(":")
            reasons[key.strip()] = why.strip()
            continue
        case_id, _, key = text.partition(" ")
        if not key.strip():
            raise ValueError(f"{path.name}:{number}: a case id without a reason: {text!r}")
        cases[case_id] = key.strip()
    return reasons, cases


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--worker"]:
        worker_main(argv[1])
        return 0
    report = run(progress=lambda line: print(line, file=sys.stderr))
    by_reason: dict[str, list[str]] = {}
    for case in report.skipped:
        by_reason.setdefault(case.skipped or "", []).append(case.id)
    for reason, ids in sorted(by_reason.items()):
        print(f"skipped {reason} ({len(ids)}): {', '.join(ids)}")
    for line in report.limbo_disagreements():
        print(f"information: {line}")
    for line in report.differences() + report.weakened():
        print(f"DIFFERENCE: {line}")
    print(report.summary())
    return 1 if report.weakened() or report.differences() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The demo's story: pin an API, attack it, report, rotate, update, expire; all on loopback.

:func:`run` plays every step against real sockets on 127.0.0.1: a three-level PKI,
a TLS "API" server, a forging man-in-the-middle proxy whose CA the client trusts, a
report collector, a key rotation onto the offline backup key, a rotation to a key
announced only by a signed pin update (and the kill switch that rescues the app that
missed it) and an expired pin set.
Each step compares what happened with what pinning promises and records both; the
caller gets a :class:`DemoResult` (the CLI prints it as a table or JSON).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from rich.console import Console

from pinset import policyfile
from pinset.chain import fetch_chain
from pinset.demo._client import Exchange, fetch
from pinset.demo._collector import LocalCollector, post_direct, start_collector
from pinset.demo._narrate import Narrator
from pinset.demo._result import HOST, DemoResult, StepResult
from pinset.enforce import ssl_context
from pinset.errors import PinMismatchError
from pinset.pins import Pin, spki_pin
from pinset.policy import DomainRule, Policy
from pinset.reporting import BackgroundReporter
from pinset.testing import CertificateAuthority, LeafCert, PrivateKey, TLSServer, generate_key
from pinset.testing._mitm import MitmProxy
from pinset.updates import UpdateSource, sign_bundle

__all__ = ["HOST", "DemoResult", "StepResult", "run"]

EXPIRES_IN = dt.timedelta(days=60)
BUNDLE_LIFETIME = dt.timedelta(days=7)
ROGUE_CA_NAME = "Rogue interception CA"


class _Abort(Exception):
    """A step could not set up what the following steps need."""


def _cn(name: x509.Name) -> str:
    names = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else name.rfc4514_string()


def _pem(ca: CertificateAuthority) -> str:
    return ca.cert_pem.bytes().decode("ascii")


def _short(pin: Pin) -> str:
    text = str(pin)
    return f"{text[:19]}…"


def _why(exchange: Exchange) -> str:
    if exchange.error is None:
        return f"HTTP {exchange.status}"
    return f"{type(exchange.error).__name__}: {exchange.error}".splitlines()[0]


def _pinned_by(exchange: Exchange, pin: Pin) -> bool:
    """The request succeeded and pinning passed because *pin* matched."""
    verdict = exchange.verdict
    return (
        exchange.ok
        and verdict is not None
        and verdict.reason == "pinned"
        and verdict.matched_pin == pin
    )


def _mismatch(exc: BaseException | None) -> PinMismatchError | None:
    while exc is not None:
        if isinstance(exc, PinMismatchError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


@contextmanager
def _updates_log(show: Callable[[str], None]) -> Iterator[None]:
    """Tell what ``pinset.updates`` logs (a failed check, a kill switch) in the story instead
    of on standard error, where Python's last-resort handler would print it."""
    logger = logging.getLogger("pinset.updates")

    class _Shown(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            show(f"{record.levelname.lower()}: {record.getMessage()}")

    handler = _Shown(logging.WARNING)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


class _Story:
    """The state the steps share, and the steps themselves (in :data:`_STEPS` order)."""

    def __init__(self, console: Console, work_dir: Path, stack: ExitStack) -> None:
        self.say = Narrator(console)
        self.dir = work_dir
        self.stack = stack
        self.results: list[StepResult] = []
        # Set up by the steps, in order.
        self.root: CertificateAuthority
        self.issuer: CertificateAuthority
        self.rogue: CertificateAuthority
        self.leaf: LeafCert
        self.server: TLSServer
        self.leaf_pin: Pin
        self.backup_key: PrivateKey
        self.backup_pin: Pin
        self.collector: LocalCollector | None = None
        self.policy: Policy
        self.reporter: BackgroundReporter
        self.proxy: MitmProxy

    # -- helpers --------------------------------------------------------------------

    def record(
        self, name: str, title: str, expected: str, observed: str, ok: bool, **details: Any
    ) -> None:
        self.results.append(StepResult(name, title, expected, observed, ok, details))

    @property
    def trusted(self) -> str:
        # The victim device trusts the real root AND the interception CA (installed by
        # an MDM profile, malware or a misissuing CA): pinning is what still protects it.
        return _pem(self.root) + _pem(self.rogue)

    def pinned_context(self, clock: Callable[[], dt.datetime] | None = None) -> ssl.SSLContext:
        return ssl_context(self.policy, cadata=self.trusted, observers=[self.reporter], clock=clock)

    def plain_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.trusted)

    # -- the steps ------------------------------------------------------------------

    def setup(self) -> None:
        self.say.step("A PKI and an API server")
        self.root = CertificateAuthority.create("pinset demo root CA")
        self.issuer = self.root.create_child_ca("pinset demo issuing CA")
        self.leaf = self.issuer.issue_cert(HOST, "127.0.0.1")
        self.rogue = CertificateAuthority.create(ROGUE_CA_NAME)
        self.say.say("Created a root CA, an issuing CA and a certificate for the API:")
        self.say.rows(
            ("certificate", "issued by", "valid until"),
            [
                (_cn(c.subject), _cn(c.issuer), str(c.not_valid_after_utc.date()))
                for c in (self.leaf.cert, self.issuer.cert, self.root.cert)
            ],
        )
        self.server = self.stack.enter_context(TLSServer(self.leaf, http_body=b"balance: 42\n"))
        self.say.fact("API server", f"https://{HOST}:{self.server.port}/ (at {self.server.host})")
        plain = fetch(self.plain_context(), self.server.address, HOST)
        ok = plain.ok and plain.body == b"balance: 42\n"
        self.say.outcome(ok, f"a client that trusts the root gets: {_why(plain)}")
        self.record(
            "setup",
            "API server up",
            "HTTP 200 over verified TLS",
            _why(plain),
            ok,
            port=self.server.port,
        )
        if not ok:
            raise _Abort("the API server does not answer")

    def extract_pins(self) -> None:
        self.say.step("Extract the pins of the live server")
        fetched = fetch_chain(
            "127.0.0.1", self.server.port, server_name=HOST, cadata=_pem(self.root), timeout=5
        )
        chain = fetched.verified or ()
        self.say.rows(
            ("#", "certificate", "pin"),
            [(str(i), _cn(c.subject), str(spki_pin(c))) for i, c in enumerate(chain)],
        )
        self.leaf_pin = spki_pin(fetched.served[0])
        ok = fetched.verified is not None and self.leaf_pin == spki_pin(self.leaf.cert)
        self.say.say("We pin the API's own key (the leaf), not a CA: nobody else can issue for it.")
        self.say.outcome(ok, f"current key: {self.leaf_pin}")
        self.record(
            "pins",
            "Pins extracted",
            "verified chain; leaf pin = server key",
            f"{len(chain)} certificates verified; leaf {_short(self.leaf_pin)}",
            ok,
            chain=[str(spki_pin(c)) for c in chain],
            leaf_pin=str(self.leaf_pin),
        )

    def write_policy(self) -> None:
        self.say.step("An offline backup key and the policy")
        self.backup_key = generate_key("ec-p256")
        self.backup_pin = spki_pin(self.backup_key.public_key())
        key_path = self.dir / "backup-key.pem"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(
                self.backup_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        self.say.say(
            "A backup key is generated now and kept offline; only its pin ships in the app, "
            "so a rotation never locks users out."
        )
        self.say.fact("backup key", f"{key_path} (a real deployment keeps it offline, encrypted)")
        self.say.fact("backup pin", str(self.backup_pin))
        self.collector = self.stack.enter_context(start_collector(self.dir))
        self.say.fact("report collector", f"{self.collector.report_uri} ({self.collector.kind})")
        expiration = dt.datetime.now(dt.timezone.utc).date() + EXPIRES_IN
        self.policy = Policy(
            rules=(
                DomainRule(
                    HOST,
                    pins=(self.leaf_pin, self.backup_pin),
                    expiration=expiration,
                    report_uris=(self.collector.report_uri,),
                ),
            )
        )
        path = self.dir / "pinset.toml"
        path.write_text(policyfile.dumps(self.policy), encoding="utf-8")
        self.say.block(path.read_text(encoding="utf-8"), title=str(path), lexer="toml")
        loaded = policyfile.load(path)
        ok = loaded == self.policy and len(loaded.rules[0].pins) == 2
        self.say.outcome(ok, "the file loads back into the same policy")
        self.reporter = BackgroundReporter(
            self.policy, app_version="pinset-demo", transport=post_direct
        )
        self.stack.callback(self.reporter.close, 5)
        self.record(
            "policy",
            "Policy written",
            "2 pins (current + backup), loads back",
            f"{len(loaded.rules[0].pins)} pins, expires {expiration}, loads back equal"
            if ok
            else "the policy did not load back equal",
            ok,
            path=str(path),
            expiration=expiration.isoformat(),
            backup_pin=str(self.backup_pin),
        )
        if not ok:
            raise _Abort("the policy does not round-trip")

    def pinned_request(self) -> None:
        self.say.step("Pinned requests")
        self.say.say(
            "The client uses pinset.ssl_context(policy). Like many real devices it also trusts "
            f"'{ROGUE_CA_NAME}'; only the pins stand between it and the attacker."
        )
        exchange = fetch(self.pinned_context(), self.server.address, HOST)
        verdict = exchange.verdict
        ok = _pinned_by(exchange, self.leaf_pin)
        self.say.outcome(ok, f"{_why(exchange)}, verdict {verdict.reason if verdict else None}")
        if verdict is not None:
            self.say.fact("matched", str(verdict.matched_pin))
        self.record(
            "pinned-request",
            "Pinned request",
            "HTTP 200, verdict pinned (current key)",
            f"{_why(exchange)}, {verdict.reason if verdict else 'no verdict'}",
            ok,
            matched_pin=str(verdict.matched_pin) if verdict else None,
        )

    def attack_unpinned(self) -> None:
        self.say.step("A man in the middle, with a CA the device trusts")
        self.proxy = self.stack.enter_context(MitmProxy(ca=self.rogue))
        self.say.say(
            f"An interception proxy at {self.proxy.url} forges a certificate for any name it is "
            f"asked for, signed by '{ROGUE_CA_NAME}', which this device trusts."
        )
        self.server.reset()
        exchange = fetch(self.plain_context(), self.server.address, HOST, proxy=self.proxy.address)
        verdict = self.proxy.verdicts([HOST])[0]
        relayed = len(self.server.requests)
        fooled = (
            exchange.ok
            and ROGUE_CA_NAME in (exchange.leaf_issuer or "")
            and verdict.outcome == "INTERCEPTED"
        )
        self.say.say("An unpinned client (normal validation only):")
        self.say.fact("certificate it accepted, issued by", exchange.leaf_issuer or "-")
        self.say.fact("answer", _why(exchange))
        if fooled:
            self.say.attack(
                f"fooled: the proxy read {verdict.leaked_bytes} bytes of the request in clear "
                f"and relayed it ({relayed} request(s) reached the API)"
            )
        else:
            self.say.bad(f"the attack did not work as staged: {verdict.outcome}, {_why(exchange)}")
        self.record(
            "mitm-unpinned",
            "MITM vs unpinned client",
            "fooled: forged cert accepted, request read",
            f"{verdict.outcome}: {verdict.leaked_bytes} bytes read, issuer {ROGUE_CA_NAME}"
            if fooled
            else f"{verdict.outcome}, {_why(exchange)}",
            fooled,
            issuer=exchange.leaf_issuer,
            leaked_bytes=verdict.leaked_bytes,
            relayed_requests=relayed,
        )

    def attack_pinned(self) -> None:
        self.say.say("The pinned client, through the same proxy:")
        self.proxy.reset()
        self.server.reset()
        exchange = fetch(self.pinned_context(), self.server.address, HOST, proxy=self.proxy.address)
        verdict = self.proxy.verdicts([HOST])[0]
        upstream = self.server.received_bytes
        error = _mismatch(exchange.error)
        ok = (
            error is not None
            and verdict.outcome == "REFUSED"
            and verdict.leaked_bytes == 0
            and upstream == 0
        )
        if error is not None:
            self.say.error(error)
        self.say.outcome(
            ok,
            f"refused before sending: {verdict.leaked_bytes} bytes reached the proxy, "
            f"{upstream} reached the API",
        )
        self.record(
            "mitm-pinned",
            "MITM vs pinned client",
            "PinMismatchError, 0 bytes leaked",
            f"{type(exchange.error).__name__ if exchange.error else 'no error'}, "
            f"{verdict.outcome}, {verdict.leaked_bytes} bytes leaked",
            ok,
            proxy_verdict=verdict.outcome,
            leaked_bytes=verdict.leaked_bytes,
            upstream_bytes=upstream,
            error=str(error) if error else _why(exchange),
        )

    def report(self) -> None:
        self.say.step("The failure report")
        assert self.collector is not None
        flushed = self.reporter.flush(10)
        stats = self.reporter.stats
        stored = self.collector.stored_reports()
        ok = flushed and stats.sent == 1 and stored == 1
        self.say.say("The pinned client's reporter sent the failure in the background:")
        self.say.fact(
            "reporter", f"queued {stats.queued}, sent {stats.sent}, failed {stats.failed}"
        )
        self.say.outcome(ok, f"the collector stored {stored} report(s) for {HOST}")
        self.record(
            "report",
            "Failure report",
            "1 report stored by the collector",
            f"{stored} stored, {stats.sent} sent",
            ok,
            collector=self.collector.kind,
            stored=stored,
            sent=stats.sent,
        )

    def rotate(self) -> None:
        self.say.step("Rotate the server onto the backup key")
        rotated = self.issuer.issue_cert(HOST, "127.0.0.1", private_key=self.backup_key)
        self.server.set_chain(rotated)
        self.say.say("The operator takes the backup key out of the safe and certifies it.")
        exchange = fetch(self.pinned_context(), self.server.address, HOST)
        verdict = exchange.verdict
        ok = _pinned_by(exchange, self.backup_pin)
        self.say.outcome(ok, f"{_why(exchange)}: the app shipped months ago still connects")
        if verdict is not None:
            self.say.fact("matched the backup pin", str(verdict.matched_pin))
        self.say.say("(Next: generate a new backup key and ship its pin before the next rotation.)")
        self.record(
            "rotate",
            "Rotation to backup key",
            "HTTP 200, verdict pinned (backup key)",
            f"{_why(exchange)}, {verdict.reason if verdict else 'no verdict'}"
            + (", backup pin" if ok else ""),
            ok,
            matched_pin=str(verdict.matched_pin) if verdict else None,
        )

    def rotate_by_bundle(self) -> None:
        self.say.step("Rotate to a key announced by a signed pin update")
        with _updates_log(lambda message: self.say.fact("app log", message)):
            self._rotate_by_bundle()

    def _rotate_by_bundle(self) -> None:
        # The bundle signing key: offline like the backup key; its public half ships.
        signing_key = ed25519.Ed25519PrivateKey.generate()
        signing_pub = self.dir / "signing.pub"
        signing_pub.write_bytes(
            signing_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        next_key = generate_key("ec-p256")
        next_pin = spki_pin(next_key.public_key())
        published = self.dir / "published-bundle.json"
        now = dt.datetime.now(dt.timezone.utc)

        def source(name: str) -> UpdateSource:
            src = UpdateSource(
                published, trusted_keys=[signing_pub], store=self.dir / name, refresh=None
            )
            self.stack.callback(src.close)
            return src

        def publish(policy: Policy, version: int, disable: tuple[str, ...] = ()) -> None:
            published.write_bytes(
                sign_bundle(
                    policy,
                    signing_key,
                    version=version,
                    issued=now,
                    expires=now + BUNDLE_LIFETIME,
                    disable=disable,
                )
            )

        self.say.say(
            "The backup key is in use now, so the app has no spare. The operator makes a new "
            "key and announces its pin in bundle 2, signed offline with a key whose public "
            "half ships in the app (an app fetches it over HTTPS pinned by its embedded "
            "policy; the demo reads it from a file)."
        )
        self.say.fact("signing key (public)", str(signing_pub))
        self.say.fact("new key's pin", str(next_pin))
        # An app that was offline while bundle 2 was out: its check finds nothing.
        stale_source = source("stale-app-updates")
        stale = ssl_context(
            self.policy, cadata=self.trusted, observers=[self.reporter], updates=stale_source
        )
        failure = stale_source.status.failure
        self.say.fact(
            "app that was offline", f"update check failed ({failure.reason if failure else '-'})"
        )
        rule = self.policy.rules[0]
        announced = Policy(
            rules=(
                DomainRule(
                    HOST,
                    pins=(*rule.pins, next_pin),
                    expiration=rule.expiration,
                    report_uris=rule.report_uris,
                ),
            )
        )
        publish(announced, 2)
        fresh_source = source("app-updates")
        fresh = ssl_context(
            self.policy, cadata=self.trusted, observers=[self.reporter], updates=fresh_source
        )
        self.say.fact("updated app", f"applied bundle {fresh_source.status.version}")
        self.server.set_chain(self.issuer.issue_cert(HOST, "127.0.0.1", private_key=next_key))
        self.say.say("The server switches to the new key.")
        updated = fetch(fresh, self.server.address, HOST)
        updated_ok = _pinned_by(updated, next_pin)
        self.say.outcome(
            updated_ok, f"updated app: {_why(updated)}, matched the pin the bundle announced"
        )
        missed = fetch(stale, self.server.address, HOST)
        error = _mismatch(missed.error)
        closed = error is not None
        self.say.outcome(
            closed, f"app that missed the update: fails closed ({_why(missed).split(':')[0]})"
        )
        assert self.collector is not None
        self.reporter.flush(10)
        before = self.collector.stored_reports()
        self.say.say(
            "To restore it without an app release, the operator signs bundle 3 with the kill "
            f"switch for {HOST}; the app takes it at its next check."
        )
        publish(announced, 3, disable=(HOST,))
        taken = stale_source.refresh()
        rescued = fetch(stale, self.server.address, HOST)
        verdict = rescued.verdict
        killed = (
            taken.valid
            and rescued.ok
            and verdict is not None
            and verdict.reason == "kill-switch"
            and verdict.allowed
        )
        self.say.outcome(
            killed,
            f"after bundle 3: {_why(rescued)}, verdict {verdict.reason if verdict else None}",
        )
        flushed = self.reporter.flush(10)
        stored = self.collector.stored_reports()
        reported = flushed and stored == before + 1
        self.say.outcome(
            reported,
            f"the kill switch in use is reported: {stored - before} new report "
            f"({stored} stored in all)",
        )
        ok = updated_ok and closed and killed and reported
        self.record(
            "rotate-bundle",
            "Rotation by signed bundle",
            "updated: pinned (new key); missed: refused; kill switch: allowed, reported",
            f"updated: {_why(updated)}, "
            f"{updated.verdict.reason if updated.verdict else 'no verdict'}; "
            f"missed: {'refused' if closed else _why(missed)}; kill switch: {_why(rescued)}, "
            f"{verdict.reason if verdict else 'no verdict'}",
            ok,
            new_pin=str(next_pin),
            bundle_versions=[fresh_source.status.version, stale_source.status.version],
            disabled=list(stale_source.status.disabled),
            reports_stored=stored,
        )

    def expire(self) -> None:
        self.say.step("The pin set expires")
        rule = self.policy.rules[0]
        assert rule.expiration is not None
        rogue_leaf = self.rogue.issue_cert(HOST, "127.0.0.1")
        self.server.set_chain(rogue_leaf)
        self.say.say("The server now presents an unpinned certificate from the trusted rogue CA.")
        before = fetch(self.pinned_context(), self.server.address, HOST)
        refused = _mismatch(before.error) is not None
        self.say.outcome(refused, f"today: refused ({_why(before).split(':')[0]})")
        after_expiry = dt.datetime.combine(rule.expiration, dt.time(0, 1), tzinfo=dt.timezone.utc)
        self.say.fact("clock moved to", after_expiry.isoformat())
        after = fetch(self.pinned_context(clock=lambda: after_expiry), self.server.address, HOST)
        verdict = after.verdict
        ok = refused and after.ok and verdict is not None and verdict.reason == "policy-expired"
        self.say.outcome(
            ok,
            f"after {rule.expiration}: {_why(after)}, verdict "
            f"{verdict.reason if verdict else None} (fails open, so a forgotten app never bricks)",
        )
        self.record(
            "expire",
            "Expired pin set",
            "fails open: HTTP 200, policy-expired",
            f"before: {'refused' if refused else _why(before)}; after: {_why(after)}, "
            f"{verdict.reason if verdict else 'no verdict'}",
            ok,
            clock=after_expiry.isoformat(),
            reason=verdict.reason if verdict else None,
        )


_STEPS: tuple[Callable[[_Story], None], ...] = (
    _Story.setup,
    _Story.extract_pins,
    _Story.write_policy,
    _Story.pinned_request,
    _Story.attack_unpinned,
    _Story.attack_pinned,
    _Story.report,
    _Story.rotate,
    _Story.rotate_by_bundle,
    _Story.expire,
)


@contextmanager
def _directory(work_dir: str | os.PathLike[str] | None) -> Iterator[Path]:
    if work_dir is not None:
        path = Path(work_dir)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="pinset-demo-") as tmp:
        yield Path(tmp)


def run(console: Console, *, work_dir: str | os.PathLike[str] | None = None) -> DemoResult:
    """Play the demo, narrating on *console*; return what every step expected and observed.

    Files (the policy, the backup key, the collector's database) go to *work_dir*,
    default a temporary directory removed afterwards. Everything listens on 127.0.0.1
    and stops before this returns. A step that fails to set up what later steps need
    ends the demo early; the result then says which step failed and why.
    """
    started = time.monotonic()
    collector: str | None = None
    with _directory(work_dir) as directory, ExitStack() as stack:
        story = _Story(console, directory, stack)
        story.say.title(
            "pinset demo",
            f"Pinning {HOST} end to end, on loopback: extract, enforce, attack, report, "
            "rotate, update, expire.",
        )
        for step in _STEPS:
            try:
                step(story)
            except _Abort as exc:
                story.say.bad(f"stopping: {exc}")
                break
            except Exception as exc:
                name = step.__name__.replace("_", "-")
                story.say.bad(f"step {name} failed: {type(exc).__name__}: {exc}")
                story.record(name, name, "completes", f"{type(exc).__name__}: {exc}", False)
                break
        if story.collector is not None:
            collector = story.collector.kind
    result = DemoResult(
        steps=tuple(story.results),
        seconds=time.monotonic() - started,
        collector=collector,
        work_dir=str(work_dir) if work_dir is not None else None,
    )
    story.say.summary(
        [(s.title, s.expected, s.observed, s.ok) for s in result.steps], result.seconds
    )
    return result

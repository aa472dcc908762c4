"""``pinset.chain.policy_from_chains``: a first policy from fetched chains plus backups (pure)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509

from pinset import policyfile
from pinset.chain import ChainPolicy, FetchedChain, PinSource, check_backups, policy_from_chains
from pinset.errors import ChainError, ConfigError
from pinset.pins import Pin, spki_pin
from pinset.testing import LeafCert, TestPKI

EXPIRES = dt.date(2031, 1, 31)
BACKUP = PinSource(Pin(hashlib.sha256(b"offline backup key").digest()), "backup pin")
OTHER_BACKUP = PinSource(Pin(hashlib.sha256(b"second backup key").digest()), "backup key b.key")


def fetched(
    leaf: LeafCert,
    *,
    host: str = "api.example.com",
    port: int = 443,
    verified: bool = True,
) -> FetchedChain:
    return FetchedChain(
        host=host,
        port=port,
        server_name=None,
        served=leaf.chain,
        verified=leaf.full_chain if verified else None,
        verify_error=None if verified else "unable to get local issuer certificate",
        tls_version="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
    )


@pytest.mark.parametrize(("level", "index"), [("leaf", 0), ("intermediate", 1), ("root", -1)])
def test_one_rule_per_host_with_the_level_pin_then_the_backups(
    leaf: LeafCert, level: str, index: int
) -> None:
    built = policy_from_chains(
        [fetched(leaf)],
        [BACKUP, OTHER_BACKUP],
        expiration=EXPIRES,
        level=level,  # type: ignore[arg-type]
        include_subdomains=True,
        report_uris=["https://collector.example/v1/report"],
    )
    assert isinstance(built, ChainPolicy)
    expected = spki_pin(leaf.full_chain[index])
    (rule,) = built.policy.rules
    assert rule.pattern == "api.example.com"
    assert rule.pins == (expected, BACKUP.pin, OTHER_BACKUP.pin)
    assert rule.include_subdomains
    assert rule.expiration == EXPIRES
    assert rule.report_uris == ("https://collector.example/v1/report",)
    assert built.policy.report_uris == ("https://collector.example/v1/report",)
    (sources,) = built.sources.values()
    assert [s.source.split(":")[0] for s in sources] == [level, "backup pin", "backup key b.key"]
    assert built.warnings == ()
    # What it builds is what the policy file says.
    assert policyfile.loads(policyfile.dumps(built.policy)) == built.policy


def test_hosts_are_canonical_and_share_one_rule(pki: TestPKI, leaf: LeafCert) -> None:
    second = pki.leaf()
    built = policy_from_chains(
        [fetched(leaf, host="API.Example.com."), fetched(second, host="api.example.com")],
        [BACKUP, BACKUP],
        expiration=EXPIRES,
    )
    (rule,) = built.policy.rules
    assert rule.pins == (spki_pin(leaf.cert), spki_pin(second.cert), BACKUP.pin)
    assert list(built.sources) == ["api.example.com"]


def test_an_unverified_chain_uses_the_served_one_with_a_warning(leaf: LeafCert) -> None:
    built = policy_from_chains(
        [fetched(leaf, host="127.0.0.1", port=8443, verified=False)],
        [BACKUP],
        expiration=EXPIRES,
        level="root",
    )
    # The served chain stops below the root: its last member is pinned, and both facts said.
    assert built.policy.rules[0].pins[0] == spki_pin(leaf.chain[-1])
    assert len(built.warnings) == 2
    assert all(w.startswith("127.0.0.1:8443: ") for w in built.warnings)
    assert "does not verify" in built.warnings[0]
    assert "pass --cafile" in built.warnings[1]


def test_no_intermediate_is_an_error(pki: TestPKI) -> None:
    lone = pki.root.issue_cert("direct.example")  # root -> leaf, nothing between
    chain = FetchedChain(
        "direct.example", 443, None, (lone.cert,), lone.full_chain, None, None, None
    )
    with pytest.raises(ChainError, match="no intermediate"):
        policy_from_chains([chain], [BACKUP], expiration=EXPIRES, level="intermediate")


def test_a_server_that_sent_nothing_is_an_error() -> None:
    empty = FetchedChain("api.example.com", 443, None, (), None, "no certificate", None, None)
    with pytest.raises(ChainError, match="sent no certificate"):
        policy_from_chains([empty], [BACKUP], expiration=EXPIRES)


@pytest.mark.parametrize(
    ("backups", "words"),
    [
        ([], "without a backup pin"),
        ([PinSource(Pin(bytes(32)), "backup pin")], "placeholder"),
    ],
)
def test_no_usable_backup_is_refused(leaf: LeafCert, backups: list[PinSource], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        check_backups(backups)
    assert caught.value.hint is not None
    assert "pinset keygen" in caught.value.hint
    with pytest.raises(ConfigError, match=words):
        policy_from_chains([fetched(leaf)], backups, expiration=EXPIRES)


def test_backups_the_server_already_uses_are_refused(leaf: LeafCert) -> None:
    in_use = [PinSource(spki_pin(c), "backup key") for c in leaf.full_chain[1:]]
    with pytest.raises(ConfigError, match=r"already used by api\.example\.com:443's chain"):
        policy_from_chains([fetched(leaf)], in_use, expiration=EXPIRES)
    # One backup the servers do not use is enough.
    built = policy_from_chains([fetched(leaf)], [*in_use, BACKUP], expiration=EXPIRES)
    assert BACKUP.pin in built.policy.rules[0].pins


def test_it_is_pure(leaf: LeafCert) -> None:
    chains = [fetched(leaf)]
    first = policy_from_chains(chains, [BACKUP], expiration=EXPIRES)
    second = policy_from_chains(chains, [BACKUP], expiration=EXPIRES)
    assert first == second
    assert isinstance(chains[0].served[0], x509.Certificate)

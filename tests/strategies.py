"""Hypothesis strategies for pinset values, shared by the format round-trip tests.

``policies(...)`` generates valid :class:`~pinset.policy.Policy` values restricted
to what a target format can express; each keyword switches one feature on or
off. Pins are SHA-256 digests of counters, so they look like real hashes
(never placeholders, never low-entropy duds) and stay reproducible.

    from strategies import policies
    @given(policies(report_only=False, report_uris=False))
"""

from __future__ import annotations

import datetime as dt
import hashlib

from hypothesis import strategies as st

from pinset.pins import Pin
from pinset.policy import DebugOverrides, DomainRule, Policy

__all__ = ["REPORT_URIS", "hostnames", "pins", "policies"]

REPORT_URIS = (
    "https://reports.example.net/pin",
    "https://collector.example.org/v1/report?app=demo&x=1",
    "http://report.test/r",
)

# A small label alphabet makes parent/child overlaps (and so exclusions) common.
_LABELS = ("api", "www", "a", "b-2", "static", "xn--bcher-kva")
_ZONES = ("example.com", "example.org", "test")


def pins() -> st.SearchStrategy[Pin]:
    """Distinct-looking SHA-256 pins (the digest of a counter)."""
    return st.integers(0, 10_000).map(
        lambda n: Pin(hashlib.sha256(f"pinset-test-key-{n}".encode()).digest())
    )


def hostnames() -> st.SearchStrategy[str]:
    """Canonical host names zero to three labels below a few zones."""
    return st.builds(
        lambda labels, zone: ".".join([*labels, zone]),
        st.lists(st.sampled_from(_LABELS), max_size=3),
        st.sampled_from(_ZONES),
    )


_dates = st.dates(min_value=dt.date(2015, 1, 1), max_value=dt.date(2040, 12, 31))


@st.composite
def policies(
    draw: st.DrawFn,
    *,
    report_only: bool = True,
    report_uris: bool = True,
    exclusions: bool = True,
    expiration: bool = True,
    one_label: bool = False,
    min_pins: int = 1,
    defaults: bool = False,
    max_rules: int = 6,
    debug_overrides: bool = False,
) -> Policy:
    """A valid policy using only the switched-on features.

    ``report_only``: rules may have ``enforce = false``. ``report_uris``: rules
    may list report URIs. ``exclusions``: ``exclude = true`` rules. ``one_label``:
    OkHttp-style ``*.`` rules. ``min_pins``: fewer pins than 2 need
    ``allow_single_pin``. ``defaults``: vary the policy-wide defaults too (only
    the native format keeps them; platform formats have no defaults).
    ``debug_overrides``: a ``[debug-overrides]`` section, its anchor files named the
    way an Android raw resource is (``name.pem``), so Android keeps them too.
    """
    enforce_default = draw(st.booleans()) if defaults else True
    include_default = draw(st.booleans()) if defaults else False
    uris_default: tuple[str, ...] = ()
    if defaults and report_uris:
        uris_default = tuple(draw(st.lists(st.sampled_from(REPORT_URIS), unique=True, max_size=2)))
    names = draw(st.lists(hostnames(), unique=True, min_size=0, max_size=max_rules))
    rules = []
    for name in names:
        if exclusions and draw(st.integers(0, 3)) == 0:
            rules.append(
                DomainRule(
                    name,
                    include_subdomains=draw(st.booleans()),
                    exclude=True,
                    enforce=enforce_default,
                    report_uris=uris_default,
                )
            )
            continue
        wildcard = one_label and draw(st.integers(0, 3)) == 0
        count = draw(st.integers(max(1, min_pins), 4))
        rule_pins = tuple(draw(st.lists(pins(), unique=True, min_size=count, max_size=count)))
        enforce = draw(st.booleans()) if report_only else True
        single = len(rule_pins) < 2 and enforce
        uris = (
            tuple(draw(st.lists(st.sampled_from(REPORT_URIS), unique=True, max_size=3)))
            if report_uris
            else uris_default
        )
        rules.append(
            DomainRule(
                name,
                pins=rule_pins,
                include_subdomains=False if wildcard else draw(st.booleans()),
                expiration=draw(st.none() | _dates) if expiration else None,
                enforce=enforce,
                report_uris=uris,
                allow_single_pin=single or draw(st.booleans()),
                one_label=wildcard,
            )
        )
    debug = None
    if debug_overrides and draw(st.booleans()):
        files = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), unique=True))
        override = bool(files) and draw(st.booleans())
        debug = DebugOverrides(tuple(f"{f}.pem" for f in files), override) if files else None
    return Policy(
        rules=tuple(rules),
        enforce=enforce_default,
        include_subdomains=include_default,
        report_uris=uris_default,
        debug_overrides=debug,
    )

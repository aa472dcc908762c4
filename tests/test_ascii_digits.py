"""Numbers from the outside are ASCII digits only.

``str.isdigit()`` is true for superscripts and other Unicode digits ('²', '٣'), and ``int()``
then either raises (→ a 500 or a traceback) or reads a number nobody wrote. Every parser that
takes a port, a length, a time or an address checks ``isascii()`` first.
"""

from __future__ import annotations

import pytest

from pinset.audit._live import parse_endpoint
from pinset.cli._inputs import parse_host_port
from pinset.errors import ConfigError, PinsetError
from pinset.formats import _hpkp as hpkp
from pinset.hosts import canonical_host
from pinset.testing._connect import Refused, parse_target

PIN = 'pin-sha256="d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="'
BACKUP = 'pin-sha256="E9CZ9INDbd+2eRQozYqqbQ2yXLVKB9+xcprMF+44U1g="'


@pytest.mark.parametrize("digits", ["²", "٤٤٣", "４４３"])
def test_cli_port_refuses_unicode_digits(digits: str) -> None:
    with pytest.raises(ConfigError, match="bad port"):
        parse_host_port(f"example.com:{digits}")


@pytest.mark.parametrize("digits", ["²", "٤٤٣"])
def test_audit_endpoint_port_refuses_unicode_digits(digits: str) -> None:
    with pytest.raises(ConfigError, match="bad port"):
        parse_endpoint(f"example.com:{digits}")


def test_hpkp_max_age_refuses_unicode_digits() -> None:
    header = f"Public-Key-Pins: {PIN}; {BACKUP}; max-age=²"
    with pytest.raises(ConfigError, match="max-age must be a number"):
        hpkp.loads(header, host="example.com")


def test_hpkp_max_age_ascii_digits_still_read() -> None:
    imported = hpkp.loads(f"Public-Key-Pins: {PIN}; {BACKUP}; max-age=600", host="example.com")
    assert [r.pattern for r in imported.policy.rules] == ["example.com"]


def test_four_unicode_digit_labels_are_not_an_ipv4_address() -> None:
    # IDNA maps superscripts to ASCII digits (NFKC), so the name either becomes the
    # address OpenSSL would check or is refused; it never raises anything but PinsetError.
    try:
        host = canonical_host("¹²⁷.⁰.⁰.¹")
    except PinsetError:
        return
    assert host == "127.0.0.1"


def test_connect_target_refuses_unicode_port() -> None:
    with pytest.raises(Refused, match="not host:port"):
        parse_target("example.com:٤٤٣")

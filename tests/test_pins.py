"""Pin values: every accepted notation, every rejected one, and the placeholder check."""

from __future__ import annotations

import base64
import hashlib

import pytest

from pinset import ConfigError, Pin, PinFormatError

DIGEST = hashlib.sha256(b"pinset test key").digest()
B64 = base64.b64encode(DIGEST).decode()
UNPADDED = B64.rstrip("=")
assert len(B64) == 44
assert B64.endswith("=")
assert not B64.endswith("==")


@pytest.mark.parametrize(
    "text",
    [
        f"sha256/{B64}",
        B64,
        UNPADDED,
        f"sha256/{UNPADDED}",
        f'pin-sha256="{B64}"',
        f'pin-sha256="{B64}";',
        f"pin-sha256='{B64}'",
        f"pin-sha256 = {UNPADDED}",
        f"  sha256/{B64}\n",
        f"\tsha256/ {B64[:20]} {B64[20:]} ",
        f"sha256/{B64[:10]}\n{B64[10:30]}\t{B64[30:]}",
        f"SHA256/{B64}",
        f"sha256//{B64}",  # curl --pinnedpubkey
        f"sha256//{UNPADDED}",
    ],
)
def test_every_notation_is_the_same_pin(text: str) -> None:
    pin = Pin.parse(text)
    assert pin.digest == DIGEST
    assert pin == Pin(DIGEST)
    assert hash(pin) == hash(Pin(DIGEST))


def test_str_b64_hex_and_repr() -> None:
    pin = Pin(DIGEST)
    assert str(pin) == f"sha256/{B64}"
    assert len(str(pin)) == len("sha256/") + 44
    assert pin.b64 == B64
    assert pin.hex == DIGEST.hex()
    assert repr(pin) == f"Pin('sha256/{B64}')"
    assert Pin.parse(str(pin)) == pin
    assert Pin.of_spki(b"pinset test key") == pin


def test_pins_compare_as_bytes_not_text() -> None:
    other = Pin(hashlib.sha256(b"another key").digest())
    assert Pin.parse(B64) != other
    assert len({Pin.parse(B64), Pin.parse(UNPADDED), Pin.parse(f"sha256/{B64}"), other}) == 2


def test_pin_is_immutable() -> None:
    pin = Pin(DIGEST)
    with pytest.raises(AttributeError):
        pin.digest = bytes(32)  # type: ignore[misc]


def _b64(n: int) -> str:
    return base64.b64encode(hashlib.sha512(b"x").digest()[:n]).decode()


REJECTED = [
    # (text, a phrase the message must contain)
    ("", "empty pin"),
    ("   \n", "empty pin"),
    ("sha256/", "nothing after 'sha256/'"),
    (B64.replace("+", "-"), "URL-safe"),
    ("sha256/" + "-_" + B64[2:], "URL-safe"),
    (_b64(31), "decodes to 31 bytes"),
    (_b64(33), "decodes to 33 bytes"),
    ("sha256/" + _b64(20), "decodes to 20 bytes"),
    ("sha1/" + _b64(20), "sha1/ pins are not supported"),
    ("md5/" + _b64(16), "md5/ pins are not supported"),
    ("sha384/" + _b64(48), "sha384/ pins are not supported"),
    ("sha-256/" + B64, "'sha256/', not 'sha-256/'"),
    ('pin-sha1="' + _b64(20) + '"', "pin-sha1 is not supported"),
    ("SHA256:" + UNPADDED, "OpenSSH"),
    (DIGEST.hex(), "hex certificate fingerprint"),
    (DIGEST.hex().upper(), "hex certificate fingerprint"),
    (":".join(f"{b:02X}" for b in DIGEST), "hex certificate fingerprint"),
    (":".join(f"{b:02x}" for b in DIGEST[:20]), "hex certificate fingerprint"),
    ("sha256/" + DIGEST.hex(), "hex certificate fingerprint"),
    (B64[:-2] + "!=", "characters '!'"),
    (B64[:20] + "é" + B64[21:], "characters 'é'"),
    ("=" + UNPADDED, "'=' is only allowed at the end"),
    (B64[:20] + "=" + B64[21:], "'=' is only allowed at the end"),
    (UNPADDED + "==", "wrong '=' padding"),
    (UNPADDED + "===", "wrong '=' padding"),
    (B64 + "=", "wrong '=' padding"),
    (UNPADDED[:-1], "decodes to 31 bytes"),
    (UNPADDED[:-2], "not valid base64"),
]


@pytest.mark.parametrize(("text", "why"), REJECTED)
def test_rejected_notations_say_why_and_what_is_valid(text: str, why: str) -> None:
    with pytest.raises(PinFormatError) as info:
        Pin.parse(text)
    error = info.value
    assert isinstance(error, ConfigError)
    assert why in error.message
    assert error.hint is not None
    assert "sha256/" in error.hint
    assert "32-byte" in error.hint
    assert "fix:" in error.diagnostics()


def test_non_text_is_rejected() -> None:
    with pytest.raises(PinFormatError, match="must be text"):
        Pin.parse(b"abc")  # type: ignore[arg-type]
    with pytest.raises(PinFormatError, match="32 bytes"):
        Pin(bytes(31))
    with pytest.raises(TypeError):
        Pin("abc")  # type: ignore[arg-type]


def test_error_location_in_message_and_diagnostics() -> None:
    with pytest.raises(PinFormatError) as info:
        Pin.parse("sha1/" + _b64(20), source="pinset.toml", line=12)
    error = info.value
    assert (error.source, error.line) == ("pinset.toml", 12)
    assert str(error).startswith("pinset.toml:12: sha1/ pins are not supported")
    assert "  --> pinset.toml:12" in error.diagnostics().splitlines()


@pytest.mark.parametrize(
    "text",
    [
        "sha256/" + base64.b64encode(bytes(32)).decode(),  # all-zero digest: AAAA…A=
        "sha256/" + "A" * 43 + "=",
        "B" * 43 + "=",  # BBBB…B=
        "C" * 43,
        "/" * 43 + "=",
        base64.b64encode(b"\x07" * 32).decode(),  # one repeated byte
        base64.b64encode(b"\xff" * 32).decode(),
    ],
)
def test_placeholders(text: str) -> None:
    assert Pin.parse(text).is_placeholder


def test_a_repeated_pattern_is_a_placeholder_in_the_one_function_that_judges_it() -> None:
    # httptoolkit/android-ssl-pinning-demo ships this dud (43 characters, unpadded); the
    # Android importer used to judge it with a second function of its own.
    assert Pin.parse("ABCDEF" * 7 + "A").is_placeholder
    assert Pin.parse("ABCDEFGH" * 5 + "ABA=").is_placeholder


def test_real_pins_are_not_placeholders() -> None:
    assert not Pin(DIGEST).is_placeholder
    assert not Pin(bytes(30) + b"\x01\x02").is_placeholder
    assert not Pin.parse("A" * 41 + "BA=").is_placeholder
    assert not Pin.parse("Qk" * 21 + "A=").is_placeholder  # the pattern breaks in the last bits
    assert not Pin(b"\x01" * 31 + b"\x02").is_placeholder


def test_base64_starting_with_slash_is_not_mistaken_for_curls_double_slash() -> None:
    digest = b"\xfc" + hashlib.sha256(b"slash").digest()[1:]
    pin = Pin(digest)
    assert pin.b64.startswith("/")
    assert str(pin).startswith("sha256//")
    assert Pin.parse(str(pin)) == pin
    assert Pin.parse(str(pin).rstrip("=")) == pin
    assert Pin.parse("sha256/" + str(pin)[len("sha256/") :]) == pin
    assert Pin.parse("sha256//" + pin.b64) == pin  # curl's spelling of the same pin
    assert Pin.parse(pin.b64) == pin


def test_pem_blocks_split_in_order_and_name_an_unterminated_block() -> None:
    from pinset.errors import ChainError
    from pinset.pins import pem_blocks

    data = (
        b"junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        b"-----BEGIN EC PARAMETERS-----\nBgg=\n-----END EC PARAMETERS-----\n"
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n"
    )
    blocks = pem_blocks(data)
    first, second = next(blocks), next(blocks)
    assert (first.number, first.kind) == (1, "CERTIFICATE")
    assert first.text.endswith(b"-----END CERTIFICATE-----")
    assert (second.number, second.kind) == (2, "EC PARAMETERS")
    with pytest.raises(ChainError, match=r"PEM block #3 \(PRIVATE KEY\) has no END line"):
        next(blocks)

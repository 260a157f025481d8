"""Честный ЗНАК marking codes (DataMatrix) of clothing and footwear: parse and validate.

Pure functions, no I/O: safe in workflows, used by the POS simulator, the fiscal simulator
and the adapters alike.

The code printed on a marked unit is a GS1 DataMatrix whose text is a sequence of GS1
Application Identifiers (AI), variable-length ones ended by the group separator GS
(ASCII 29, ``\\x1d``):

``01`` GTIN (14 digits, the last a GS1 mod-10 check digit) · ``21`` serial number (13
characters for light industry and footwear) · GS · ``91`` verification key id (4 characters)
· GS · ``92`` verification code, the "crypto tail" (44 characters, base64 alphabet).

Sources: the operator's technical requirements for light industry and footwear codes
(«Честный ЗНАК», ЦРПТ: «Структура кода маркировки»: 01+GTIN(14)+21+serial(13)+GS+91+key(4)+
GS+92+code(44)); GS1 General Specifications §7.9 (check digit) and Figure 7.11-1 (AI 82
character set of the serial); the Wildberries Orders FBS API ``PUT /api/v3/orders/{orderId}/
meta/sgtin`` (codes sent "in full, with GS separators and the crypto tail, or in the short
format, with GS separators and without the crypto tail") — the short format is the
identification code ``01…21…`` alone, which the sandbox and Orkestr also accept.

A scanner may prefix the symbology identifier ``]d2`` (or ``]C1``) or a leading FNC1/GS;
both are stripped. Two codes denote the same unit when their :attr:`MarkingCode.identity`
(``01`` + GTIN + ``21`` + serial) is equal: the crypto tail is not kept everywhere (a
refund receipt, a return), so a returned unit is matched by its identity.

Errors: :class:`MarkingCodeError` with ``field`` (``gtin``, ``serial``, ``key_id``,
``crypto``, ``code``) and a message a store associate can act on.
"""

from __future__ import annotations

import base64
import random
import string
from dataclasses import dataclass

GS = "\x1d"
#: serial length of light industry (clothing) and footwear codes
SERIAL_LENGTH = 13
KEY_ID_LENGTH = 4
CRYPTO_LENGTH = 44
#: GS1 AI encodable character set 82 (what a serial may contain)
AI82 = frozenset(string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_")
_BASE64 = frozenset(string.ascii_letters + string.digits + "+/=")
_SYMBOLOGY_PREFIXES = ("]d2", "]C1", "]Q3")


class MarkingCodeError(ValueError):
    """A marking code that is not a valid light-industry/footwear DataMatrix code."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def gtin_check_digit(body: str) -> int:
    """GS1 mod-10 check digit of the first 13 digits of a GTIN-14 (GS1 General Specifications
    §7.9.1: weights 3,1,3,… from the right of the body, check = (10 − sum mod 10) mod 10)."""
    if len(body) != 13 or not body.isdigit():
        raise ValueError("a GTIN-14 body is 13 digits")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def valid_gtin(gtin: str) -> bool:
    return len(gtin) == 14 and gtin.isdigit() and gtin_check_digit(gtin[:13]) == int(gtin[13])


def gtin_from_barcode(barcode: str) -> str:
    """The GTIN-14 of an EAN-13 (or GTIN-14) barcode: EAN-13 gets a leading 0, same check digit."""
    gtin = barcode.zfill(14)
    if not valid_gtin(gtin):
        raise MarkingCodeError("gtin", f"{barcode!r} is not a valid EAN-13/GTIN-14")
    return gtin


@dataclass(frozen=True)
class MarkingCode:
    gtin: str
    serial: str
    #: AI 91 and 92; empty in the short format (identification code only)
    key_id: str = ""
    crypto: str = ""

    @property
    def identity(self) -> str:
        """``01`` + GTIN + ``21`` + serial: the unit's identification code (КИ)."""
        return f"01{self.gtin}21{self.serial}"

    @property
    def full(self) -> bool:
        return bool(self.crypto)

    def text(self) -> str:
        """The code as scanned (with GS separators; the short format without the tail)."""
        if not self.full:
            return self.identity
        return f"{self.identity}{GS}91{self.key_id}{GS}92{self.crypto}"

    def base64(self) -> str:
        """:meth:`text` in base64, the encoding ATOL Online v5 takes in ``mark_code.gs1m``."""
        return base64.b64encode(self.text().encode("ascii")).decode("ascii")


def parse_marking_code(raw: str) -> MarkingCode:
    """Parse and validate a scanned code (see the module docstring); :class:`MarkingCodeError`
    names the first part that is wrong."""
    if not isinstance(raw, str) or not raw.strip():
        raise MarkingCodeError("code", "the marking code is empty")
    text = raw.strip()
    for prefix in _SYMBOLOGY_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.lstrip(GS)
    if not text.startswith("01"):
        raise MarkingCodeError("code", "a marking code starts with AI 01 (GTIN)")
    gtin = text[2:16]
    if len(gtin) != 14 or not gtin.isdigit():
        raise MarkingCodeError("gtin", "the GTIN after 01 is 14 digits")
    if not valid_gtin(gtin):
        raise MarkingCodeError("gtin", f"GTIN {gtin} has a wrong check digit (expected {gtin_check_digit(gtin[:13])})")
    rest = text[16:]
    if not rest.startswith("21"):
        raise MarkingCodeError("serial", "AI 21 (serial number) must follow the GTIN")
    groups = rest[2:].split(GS)
    serial = groups[0]
    if len(serial) != SERIAL_LENGTH:
        raise MarkingCodeError(
            "serial", f"the serial of a clothing/footwear code is {SERIAL_LENGTH} characters, got {len(serial)}"
            + (" (the GS separators are missing?)" if len(serial) > SERIAL_LENGTH else "")
        )
    bad = sorted({c for c in serial if c not in AI82})
    if bad:
        raise MarkingCodeError("serial", f"the serial has characters outside GS1 set 82: {''.join(bad)!r}")
    tail = groups[1:]
    if not tail:
        return MarkingCode(gtin=gtin, serial=serial)
    if len(tail) != 2 or not tail[0].startswith("91") or not tail[1].startswith("92"):
        raise MarkingCodeError("code", "after the serial come GS 91<key> GS 92<crypto> (or nothing)")
    key_id, crypto = tail[0][2:], tail[1][2:]
    if len(key_id) != KEY_ID_LENGTH or any(c not in AI82 for c in key_id):
        raise MarkingCodeError("key_id", f"the verification key id (AI 91) is {KEY_ID_LENGTH} characters")
    if len(crypto) != CRYPTO_LENGTH or any(c not in _BASE64 for c in crypto):
        raise MarkingCodeError("crypto", f"the verification code (AI 92) is {CRYPTO_LENGTH} base64 characters")
    return MarkingCode(gtin=gtin, serial=serial, key_id=key_id, crypto=crypto)


def is_valid_marking_code(raw: str) -> bool:
    try:
        parse_marking_code(raw)
    except MarkingCodeError:
        return False
    return True


def decode_gs1m(value: str) -> MarkingCode:
    """A code as a fiscal API carries it: base64 (ATOL v5 ``gs1m``) or the plain text."""
    if value.startswith("01"):
        return parse_marking_code(value)
    try:
        plain = base64.b64decode(value, validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise MarkingCodeError("code", "neither a marking code nor its base64") from None
    return parse_marking_code(plain)


_SERIAL_ALPHABET = string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_"
_CRYPTO_ALPHABET = string.ascii_letters + string.digits + "+/"


def generate_marking_code(gtin: str, rng: random.Random) -> MarkingCode:
    """A structurally valid full code for ``gtin`` (the sandbox's stores and marketplaces)."""
    serial = "".join(rng.choice(_SERIAL_ALPHABET) for _ in range(SERIAL_LENGTH))
    key_id = "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(KEY_ID_LENGTH))
    crypto = "".join(rng.choice(_CRYPTO_ALPHABET) for _ in range(CRYPTO_LENGTH - 1)) + "="
    return MarkingCode(gtin=gtin, serial=serial, key_id=key_id, crypto=crypto)



#: FFD 1.05 tag 1162 (код товара) of a DataMatrix-marked unit: the product code type 0x444D
#: ("DM"), the GTIN as a 6-byte big-endian integer, then the serial in ASCII; ATOL Online v4
#: takes it as ``nomenclature_code``, hex bytes separated by spaces
#: (``"44 4D 04 6A 05 B6 5C 2C 33 52 …"``, ATOL Online API v4 description, «nomenclature_code»).
TAG1162_DATAMATRIX = b"DM"


def nomenclature_code(code: MarkingCode) -> str:
    """Tag 1162 of ``code`` as ATOL v4's ``nomenclature_code`` (hex bytes, space separated)."""
    raw = TAG1162_DATAMATRIX + int(code.gtin).to_bytes(6, "big") + code.serial.encode("ascii")
    return " ".join(f"{b:02X}" for b in raw)


def from_nomenclature_code(value: str) -> MarkingCode:
    """The unit a tag-1162 hex string names (short format: no crypto tail in tag 1162)."""
    try:
        raw = bytes.fromhex(value.replace(" ", ""))
    except ValueError:
        raise MarkingCodeError("code", "nomenclature_code is not hex") from None
    if raw[:2] != TAG1162_DATAMATRIX or len(raw) < 8:
        raise MarkingCodeError("code", "nomenclature_code is not a DataMatrix product code (44 4D …)")
    gtin = str(int.from_bytes(raw[2:8], "big")).zfill(14)
    return parse_marking_code(f"01{gtin}21{raw[8:].decode('ascii', errors='replace')}")

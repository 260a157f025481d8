"""Marking codes (Честный ЗНАК DataMatrix for clothing and footwear): domain/marking.py."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, strategies as st

from domain.marking import (
    AI82,
    GS,
    MarkingCode,
    MarkingCodeError,
    decode_gs1m,
    generate_marking_code,
    gtin_check_digit,
    gtin_from_barcode,
    from_nomenclature_code,
    is_valid_marking_code,
    nomenclature_code,
    parse_marking_code,
)

# a real-shaped code (GTIN 04606203086626: its check digit worked out below)
GTIN = "04606203086626"
FULL = f"01{GTIN}215Mm(aYdM_k3Nq{GS}91EE10{GS}92" + "A" * 43 + "="


def test_check_digit_by_hand() -> None:
    # body 0460620308662, weights 3,1,3,... from the right:
    # 2*3 + 6*1 + 6*3 + 8*1 + 0*3 + 3*1 + 0*3 + 2*1 + 6*3 + 0*1 + 6*3 + 4*1 + 0*3
    # = 6 + 6 + 18 + 8 + 0 + 3 + 0 + 2 + 18 + 0 + 18 + 4 + 0 = 83 -> (10 - 83 % 10) % 10 = 7
    body = GTIN[:13]
    total = sum(int(d) * w for d, w in zip(reversed(body), [3, 1] * 7))
    assert total == 83
    assert gtin_check_digit(body) == (10 - 83 % 10) % 10 == 7


def test_full_code_parsed() -> None:
    gtin = GTIN[:13] + "7"
    code = parse_marking_code(FULL.replace(GTIN, gtin))
    assert code.gtin == gtin and code.serial == "5Mm(aYdM_k3Nq" and code.key_id == "EE10" and code.full
    assert code.identity == f"01{gtin}215Mm(aYdM_k3Nq"


def test_wrong_check_digit_names_gtin() -> None:
    with pytest.raises(MarkingCodeError) as err:
        parse_marking_code(FULL)  # GTIN ends in 6, the check digit is 7
    assert err.value.field == "gtin" and "expected 7" in err.value.message


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("", "code"),
        ("02" + "0" * 30, "code"),
        ("0104606203086627", "serial"),
        ("01046062030866272112345", "serial"),  # serial too short
        ("010460620308662721" + "A" * 13 + "91EE1092" + "A" * 44, "serial"),  # GS separators lost
        ("010460620308662721" + "A" * 12 + "й", "serial"),
        ("010460620308662721" + "A" * 13 + GS + "91EE1" + GS + "92" + "A" * 44, "key_id"),
        ("010460620308662721" + "A" * 13 + GS + "91EE10" + GS + "92" + "A" * 40, "crypto"),
        ("010460620308662721" + "A" * 13 + GS + "92" + "A" * 44, "code"),
    ],
)
def test_bad_codes_name_the_part(raw: str, field: str) -> None:
    with pytest.raises(MarkingCodeError) as err:
        parse_marking_code(raw)
    assert err.value.field == field


def test_short_format_and_scanner_prefix() -> None:
    short = "010460620308662721" + "ABCdef0123456"
    code = parse_marking_code("]d2" + GS + short)
    assert code.identity == short and not code.full and code.text() == short


def test_ean13_becomes_gtin14() -> None:
    assert gtin_from_barcode("4606203086627") == "04606203086627"
    with pytest.raises(MarkingCodeError):
        gtin_from_barcode("4606203086626")


def test_gs1m_base64_or_plain() -> None:
    code = generate_marking_code("04606203086627", random.Random(1))
    assert decode_gs1m(code.base64()) == code
    assert decode_gs1m(code.text()) == code
    assert base64.b64decode(code.base64()).decode().startswith("0104606203086627")
    with pytest.raises(MarkingCodeError):
        decode_gs1m("not a code")


gtin_bodies = st.text(alphabet="0123456789", min_size=13, max_size=13)


@given(gtin_bodies, st.integers(0, 2**32))
def test_generated_codes_round_trip(body: str, seed: int) -> None:
    gtin = body + str(gtin_check_digit(body))
    code = generate_marking_code(gtin, random.Random(seed))
    assert parse_marking_code(code.text()) == code
    assert parse_marking_code(code.identity) == MarkingCode(gtin=gtin, serial=code.serial)


@given(gtin_bodies, st.integers(1, 9))
def test_any_other_check_digit_is_refused(body: str, shift: int) -> None:
    wrong = (gtin_check_digit(body) + shift) % 10
    raw = f"01{body}{wrong}21" + "A" * 13
    assert not is_valid_marking_code(raw)


@given(gtin_bodies, st.integers(0, 2**32), st.integers(0, 40), st.sampled_from("0123456789"))
def test_a_changed_gtin_digit_is_caught(body: str, seed: int, pos: int, digit: str) -> None:
    """Mod 10 catches every single-digit error in the GTIN."""
    gtin = body + str(gtin_check_digit(body))
    text = generate_marking_code(gtin, random.Random(seed)).text()
    i = 2 + pos % 14
    if text[i] == digit:
        return
    assert not is_valid_marking_code(text[:i] + digit + text[i + 1:])


@given(st.text(alphabet=sorted(AI82), min_size=13, max_size=13))
def test_any_ai82_serial_is_accepted(serial: str) -> None:
    assert parse_marking_code(f"0104606203086627{'21'}{serial}").serial == serial


def test_tag_1162_for_atol_v4() -> None:
    code = parse_marking_code("0104606203086627213RlNynRmAbCdE")
    hexed = nomenclature_code(code)
    # "DM", then the GTIN 4606203086627 = 0x043077194723 as six bytes, then the serial's ASCII
    assert hexed.startswith("44 4D ")
    assert hexed.split()[2:8] == ["04", "30", "77", "19", "47", "23"]
    assert hexed.split()[8:] == [f"{ord(c):02X}" for c in "3RlNynRmAbCdE"]
    assert from_nomenclature_code(hexed) == code

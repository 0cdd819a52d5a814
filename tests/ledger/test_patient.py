"""NIR validation, commitments and sealed openings (ledger/patient.py)."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpledger.ledger.encoding import EncodingError
from tpledger.ledger.errors import PatientDataError
from tpledger.ledger.keys import BoxKey
from tpledger.ledger.patient import (
    Opening,
    commitment,
    is_valid_nir,
    make_test_birth_date,
    make_test_nir,
    new_opening,
    nir_key,
    normalize_nir,
    open_sealed,
    seal_opening,
    sealed_digest,
    validate_birth_date,
    verify_opening,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _with_key(first13: str) -> str:
    return first13 + f"{nir_key(first13):02d}"


def test_known_key() -> None:
    # 97 - (1850578006048 mod 97) computed independently
    n = 1850578006048
    assert nir_key("1850578006048") == 97 - n % 97
    assert normalize_nir(_with_key("1850578006048")) == _with_key("1850578006048")


def test_corsica_keys() -> None:
    a = "2A"  # 2A -> 19, 2B -> 18 in the key computation
    first = "18507" + a + "004123"
    assert nir_key(first) == 97 - int("18507" + "19" + "004123") % 97
    assert is_valid_nir(_with_key(first))
    first_b = "28507" + "2B" + "004123"
    assert nir_key(first_b) == 97 - int("28507" + "18" + "004123") % 97
    assert is_valid_nir(_with_key(first_b))
    assert is_valid_nir(_with_key(first_b).lower())  # normalized to upper case
    # a 2A NIR carrying the key computed as if the department were 20 is invalid
    wrong = first + f"{97 - int('1850720004123') % 97:02d}"
    assert not is_valid_nir(wrong)


def test_spaces_stripped() -> None:
    n = _with_key("1850578006048")
    spaced = f"{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}"
    assert normalize_nir(spaced) == n


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_generated_nirs_valid(rng: random.Random) -> None:
    n = make_test_nir(rng)
    assert normalize_nir(n) == n
    assert is_valid_nir(make_test_nir(rng, corsica=True))
    validate_birth_date(make_test_birth_date(rng))


@pytest.mark.parametrize(
    "bad",
    [
        "", "1", "18505780060481", "1850578006048123",  # lengths
        "3850578006048" + "00", "0850578006048" + "00",  # sex
        "1851378006048" + "00", "1850078006048" + "00",  # month
        "18505780060X8" + "00", "18505 2C006048" + "00",  # characters
        "1850578006048" + "98",
    ],
)
def test_invalid_nirs(bad: str) -> None:
    assert not is_valid_nir(bad)


@SETTINGS
@given(st.randoms(use_true_random=False), st.integers(1, 96))
def test_wrong_key_rejected(rng: random.Random, delta: int) -> None:
    n = make_test_nir(rng)
    key = (int(n[13:]) - 1 + delta) % 97 + 1
    assert not is_valid_nir(n[:13] + f"{key:02d}")


def _assert_no_echo(message: str, secret: str) -> None:
    if len(secret) >= 5:
        assert secret not in message
    digits = re.sub(r"\D", "", secret)
    for i in range(len(digits) - 4):
        assert digits[i : i + 5] not in message


@SETTINGS
@given(
    st.one_of(
        st.text(max_size=30),
        st.text("0123456789 AB", min_size=13, max_size=17),
        st.randoms(use_true_random=False).map(lambda r: make_test_nir(r)[:13] + "00"),
    )
)
def test_nir_errors_never_echo_input(nir: str) -> None:
    try:
        normalize_nir(nir)
    except PatientDataError as exc:
        _assert_no_echo(str(exc), nir)
        assert exc.__cause__ is None
        _assert_no_echo(repr(exc), nir)


@SETTINGS
@given(st.text(max_size=20))
def test_birth_date_errors_never_echo(s: str) -> None:
    try:
        validate_birth_date(s)
    except PatientDataError as exc:
        if any(c.isdigit() for c in s):
            assert s not in str(exc)
        _assert_no_echo(str(exc), s)
        assert exc.__cause__ is None


@pytest.mark.parametrize("bad", ["2024-02-30", "2023-13-01", "1849-01-01", "24-01-01",
                                 "2024/01/01", "2024-1-01", " 2024-01-01"])
def test_invalid_birth_dates(bad: str) -> None:
    with pytest.raises(PatientDataError):
        validate_birth_date(bad)


def _opening(rng: random.Random | None = None, member: str = "") -> Opening:
    rng = rng or random.Random(7)
    return new_opening(make_test_nir(rng), make_test_birth_date(rng), member)


def test_opening_repr_hides_everything() -> None:
    o = _opening(member="M123456789")
    for text in (repr(o), str(o), f"{o}", repr([o])):
        _assert_no_echo(text, o.nir)
        assert o.birth_date not in text and "M123456789" not in text
        assert o.salt.hex() not in text


def test_commitment_salted() -> None:
    rng = random.Random(1)
    nir, bd = make_test_nir(rng), make_test_birth_date(rng)
    a, b = new_opening(nir, bd), new_opening(nir, bd)
    assert a.salt != b.salt and len(a.salt) == 32
    ca, cb = commitment(a), commitment(b)
    assert ca != cb and len(ca) == 32
    assert verify_opening(a, ca) and verify_opening(b, cb)
    assert not verify_opening(a, cb)
    assert not verify_opening(a, ca[:31])
    other = Opening(a.salt, make_test_nir(rng), bd, "")
    assert not verify_opening(other, ca)
    # member number is outside the commitment
    assert commitment(Opening(a.salt, a.nir, a.birth_date, "X1")) == ca


def test_opening_record_validates() -> None:
    o = _opening()
    assert Opening.decode(o.encode()) == o
    with pytest.raises(PatientDataError):
        Opening(o.salt, o.nir[:13] + "00" if o.nir[13:] != "00" else o.nir[:13] + "01",
                o.birth_date, "")
    with pytest.raises(PatientDataError):
        Opening(b"\0" * 31, o.nir, o.birth_date, "")
    with pytest.raises(PatientDataError):
        new_opening(o.nir, o.birth_date, "bad member!")
    with pytest.raises(EncodingError):
        Opening.decode(o.encode() + b"\0")


def test_seal_round_trip() -> None:
    box, other = BoxKey.generate(), BoxKey.generate()
    o = _opening(member="ABC-42")
    sealed = seal_opening(o, box.public)
    assert o.nir.encode() not in sealed
    assert open_sealed(box, sealed) == o
    assert len(sealed_digest(sealed)) == 32
    assert sealed_digest(sealed) != sealed_digest(seal_opening(o, box.public))  # randomized
    with pytest.raises(PatientDataError):
        open_sealed(other, sealed)
    with pytest.raises(PatientDataError):
        open_sealed(box, sealed[:-1])
    from tpledger.ledger.keys import seal

    with pytest.raises(PatientDataError):
        open_sealed(box, seal(box.public, b"not an opening"))
    with pytest.raises(PatientDataError):
        seal_opening(o, b"short")

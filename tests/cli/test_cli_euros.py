"""Euro amounts: one parser and one formatter, round-tripping exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tpledger.cli.euros import MAX_EUROS_CENTS, AmountError, format_cents, parse_euros


@pytest.mark.parametrize(
    ("text", "cents"),
    [("12.04", 1204), ("0", 0), ("0.5", 50), ("7.10", 710), ("100", 10000), ("0.01", 1)],
)
def test_parse_examples(text: str, cents: int) -> None:
    assert parse_euros(text) == cents


@pytest.mark.parametrize(
    "bad",
    ["12.045", "1.001", "-1.00", "+1", "1e3", "NaN", "Infinity", "", " 12", "12 ", "1,20",
     "12.", ".5", "0x10", "١٢"],
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(AmountError):
        parse_euros(bad)


@pytest.mark.parametrize("bad", [12.04, 12, True, None, 0.1])
def test_parse_rejects_non_strings(bad: object) -> None:
    with pytest.raises(AmountError, match="decimal string"):
        parse_euros(bad)


def test_parse_rejects_too_large() -> None:
    with pytest.raises(AmountError, match="too large"):
        parse_euros("999999999.99")


def test_format_examples() -> None:
    assert format_cents(1204) == "12.04"
    assert format_cents(5) == "0.05"
    assert format_cents(0) == "0.00"
    assert format_cents(-5) == "-0.05"
    with pytest.raises(TypeError):
        format_cents(1.5)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=MAX_EUROS_CENTS))
def test_round_trip_cents(cents: int) -> None:
    assert parse_euros(format_cents(cents)) == cents


@given(st.integers(0, 10**7), st.integers(0, 99), st.booleans())
def test_round_trip_text(whole: int, frac: int, two_digits: bool) -> None:
    text = f"{whole}.{frac:02d}" if two_digits else str(whole)
    assert format_cents(parse_euros(text)) == (text if two_digits else f"{whole}.00")


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_always_rejected(value: float) -> None:
    with pytest.raises(AmountError):
        parse_euros(value)


@given(st.integers(0, 10**6), st.integers(0, 999).filter(lambda f: f % 10 != 0))
def test_three_decimals_rejected(whole: int, frac: int) -> None:
    with pytest.raises(AmountError):
        parse_euros(f"{whole}.{frac:03d}")

"""Euro amounts: the one place that turns ``"12.04"`` into 1204 cents and back.

Amounts are decimal strings with at most two decimals; floats are refused (``0.1 + 0.2`` is not
money). Parsing goes through :class:`decimal.Decimal`, never through ``float``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from tpledger.cli.errors import UsageError
from tpledger.ledger.patient import shown

MAX_EUROS_CENTS = 10**10  # same ceiling as ledger.tx.MAX_AMOUNT_CENTS
_EUROS_RE = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,2})?")


class AmountError(UsageError):
    """A euro amount that is not a non-negative decimal string with at most 2 decimals."""


def parse_euros(value: object, what: str = "amount") -> int:
    """Parse a euro amount given as a decimal string (``"12.04"``) into cents (1204).

    Refuses floats, ints from JSON (use strings), signs, exponents, more than 2 decimals.
    The message names ``what`` and never echoes anything but the offending amount.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise AmountError(f"{what} must be a decimal string in euros such as \"12.04\"")
    if _EUROS_RE.fullmatch(value) is None:
        raise AmountError(
            f"{what} {shown(value, 20)} is not a euro amount (digits, optional '.' and at most "
            "2 decimals)"
        )
    try:
        cents = Decimal(value) * 100
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise AmountError(f"{what} is not a decimal number") from None
    if cents != cents.to_integral_value():  # pragma: no cover - regex caps decimals at 2
        raise AmountError(f"{what} has more than 2 decimals")
    result = int(cents)
    if result > MAX_EUROS_CENTS:
        raise AmountError(f"{what} is too large")
    return result


def format_cents(cents: int) -> str:
    """Format cents as a euro decimal string: 1204 → ``"12.04"``, -5 → ``"-0.05"``."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError("cents must be an int")
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"

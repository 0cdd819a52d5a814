"""Quorum proposals, ballots and tariff publication (WP2 fills these in).

Handlers follow the ``TxKind.apply`` signature ``(view, ctx, stx, body, tx_id, signer,
height, time_ms)``; ``signer`` is the registry-in-force record of the signing key (an
``OrgRecord`` for an admin, or a ``ParticipantRecord``). They import ``ledger.registry`` and
``ledger.state``, never ``ledger.rules`` (which imports them for its table).
"""

from __future__ import annotations

from typing import Any

from tpledger.ledger.errors import RuleError


def _not_yet(what: str) -> RuleError:
    return RuleError("unknown_tx_kind", f"{what} is not applied by this version")


def apply_propose(view: Any, ctx: Any, stx: Any, body: Any, tx_id: bytes, signer: Any,
                  height: int, time_ms: int) -> None:
    raise _not_yet("a governance proposal")


def apply_ballot(view: Any, ctx: Any, stx: Any, body: Any, tx_id: bytes, signer: Any,
                 height: int, time_ms: int) -> None:
    raise _not_yet("a governance ballot")


def apply_lpp_publish(view: Any, ctx: Any, stx: Any, body: Any, tx_id: bytes, signer: Any,
                      height: int, time_ms: int) -> None:
    raise _not_yet("a tariff publication")

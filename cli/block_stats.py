"""Anonymous statistics from certified blocks: the pure core of ``tpledger stats``.

:func:`fetch_blocks` checks each block a node serves against its quorum certificate and the
genesis (an auditor trusts no node); :func:`aggregate_blocks` folds them into counts and
amounts per LPP code, class, payer and month. No optician, commitment or claim id leaves
:class:`Stats`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tpledger.cli.errors import CliError
from tpledger.ledger.blocks import Block
from tpledger.ledger.errors import LedgerError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.merkle import leaf_hash
from tpledger.ledger.tx import SHARE_AMO, Cancel, Claim, Decision, Payment, SignedTx
from tpledger.ledger.validity import (
    BlockInvalid,
    check_certificate,
    check_chain,
    check_height,
    check_proposer,
    check_txs_root,
)
from tpledger.ledger.votes import CommitCertificate


@dataclass
class Counter:
    count: int = 0
    qty: int = 0
    cents: int = 0

    def to_json(self) -> dict[str, int]:
        return {"count": self.count, "qty": self.qty, "cents": self.cents}


@dataclass
class PayerTotals:
    claims: int = 0
    asked_cents: int = 0
    accepted: int = 0
    rejected: int = 0
    approved_cents: int = 0
    payments: int = 0
    paid_cents: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Stats:
    """Anonymous statistics: no optician, no commitment, no claim id leaves this object."""

    from_height: int = 0
    to_height: int = 0
    claims: int = 0
    claimed_cents: int = 0
    cancels: int = 0
    by_lpp: dict[str, Counter] = field(default_factory=dict)
    by_class: dict[str, Counter] = field(default_factory=dict)
    by_payer: dict[str, PayerTotals] = field(default_factory=dict)
    by_month: dict[str, Counter] = field(default_factory=dict)

    def payer(self, org: str) -> PayerTotals:
        return self.by_payer.setdefault(org, PayerTotals())

    def to_json(self) -> dict[str, Any]:
        return {
            "from_height": self.from_height,
            "to_height": self.to_height,
            "claims": self.claims,
            "claimed_cents": self.claimed_cents,
            "cancels": self.cancels,
            "by_lpp": {k: v.to_json() for k, v in sorted(self.by_lpp.items())},
            "by_class": {k: v.to_json() for k, v in sorted(self.by_class.items())},
            "by_payer": {k: v.to_json() for k, v in sorted(self.by_payer.items())},
            "by_month": {k: v.to_json() for k, v in sorted(self.by_month.items())},
        }


def _month(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m")


def aggregate_blocks(blocks: Iterable[Block], genesis: Genesis, lpp: LppTable,
                     stats: Stats | None = None) -> Stats:
    """Fold certified blocks into :class:`Stats` (claims by LPP code, class, payer, month)."""
    st = stats if stats is not None else Stats()
    orgs = {p.ed25519: p.org for p in genesis.participants}
    cnam = next((p.org for p in genesis.participants if p.role == "cnam"), "cnam")
    for block in blocks:
        h = block.header
        st.from_height = h.height if st.from_height == 0 else min(st.from_height, h.height)
        st.to_height = max(st.to_height, h.height)
        month = _month(h.time_ms)
        for raw in block.txs:
            stx = SignedTx.decode(raw)
            body = stx.parse()
            signer = orgs.get(stx.signer, "?")
            if isinstance(body, Claim):
                st.claims += 1
                st.claimed_cents += body.total_cents
                m = st.by_month.setdefault(month, Counter())
                m.count += 1
                m.cents += body.total_cents
                for line in body.lines:
                    m.qty += line.qty
                    for key, table in ((line.lpp, st.by_lpp),
                                       (_klass(lpp, line.lpp), st.by_class)):
                        c = table.setdefault(key, Counter())
                        c.count += 1
                        c.qty += line.qty
                        c.cents += line.amount_cents
                for org, asked in ((cnam, body.amo_cents), (body.insurer, body.amc_cents)):
                    if asked > 0:
                        p = st.payer(org)
                        p.claims += 1
                        p.asked_cents += asked
            elif isinstance(body, Decision):
                p = st.payer(cnam if body.share == SHARE_AMO else signer)
                if body.accept:
                    p.accepted += 1
                    p.approved_cents += body.approved_cents
                else:
                    p.rejected += 1
            elif isinstance(body, Payment):
                p = st.payer(cnam if body.share == SHARE_AMO else signer)
                p.payments += 1
                p.paid_cents += body.amount_cents
            elif isinstance(body, Cancel):
                st.cancels += 1
    return st


def _klass(lpp: LppTable, code: str) -> str:
    entry = lpp.get(code)
    if entry is None:
        return "unknown"
    return entry.klass or "none"


def check_block(block: Block, cert: CommitCertificate, genesis: Genesis, height: int) -> None:
    """Raise CliError unless ``block`` is the certified block at ``height`` of this chain."""
    h = block.header
    try:
        check_chain(h, genesis.chain_id)
        check_height(h, height)
        check_proposer(h, len(genesis.validator_keys))
        check_certificate(h, cert, genesis.chain_id, genesis.validator_keys)
        check_txs_root(h, [leaf_hash(raw) for raw in block.txs])
    except BlockInvalid as exc:
        raise CliError(f"block {height}: {exc}") from None


def fetch_blocks(fetch: Callable[[int], tuple[bytes, bytes]], genesis: Genesis, start: int,
                 end: int) -> Iterable[Block]:
    """Blocks ``start..end`` (inclusive), each checked against its certificate."""
    for height in range(start, end + 1):
        raw_block, raw_cert = fetch(height)
        try:
            block = Block.decode(raw_block)
            cert = CommitCertificate.decode(raw_cert)
        except LedgerError as exc:
            raise CliError(f"block {height}: {exc}") from None
        check_block(block, cert, genesis, height)
        yield block


__all__ = [
    "Counter",
    "PayerTotals",
    "Stats",
    "aggregate_blocks",
    "check_block",
    "fetch_blocks",
]

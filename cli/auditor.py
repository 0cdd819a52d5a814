"""Auditors and witnesses: checkpoints, consistency proofs, fork detection, statistics.

Everything here checks what nodes serve against the genesis alone (quorum certificates,
RFC 9162 consistency paths), so an auditor trusts no node.

* :class:`Witness` is the pure core of ``tpledger witness``: feed it checkpoints (and a way to
  fetch consistency paths and older checkpoints from the node that served them); it keeps the
  highest verified checkpoint, checks every newer one extends it, and returns
  :class:`ForkEvidence` when two valid certificates exist for one height.
* :func:`aggregate_blocks` is the pure core of ``tpledger stats``: anonymous counts and amounts
  per LPP code, class, payer and month, computed from certified blocks only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cli.errors import CliError
from ledger.blocks import Block, txs_root
from ledger.errors import LedgerError, SignatureError
from ledger.genesis import Genesis
from ledger.lpp import LppTable
from ledger.proofs import Checkpoint, ConsistencyProof, verify_checkpoint, verify_consistency_proof
from ledger.tx import SHARE_AMO, Cancel, Claim, Decision, Payment, SignedTx
from ledger.votes import CommitCertificate, double_signers

STATE_KIND = "tpledger-witness-state"
MAX_CHECKPOINT_FILE_BYTES = Checkpoint.MAX_BYTES + 64
MAX_STATE_FILE_BYTES = 4 * MAX_CHECKPOINT_FILE_BYTES + 4096  # one checkpoint, hex, in JSON
MAX_CONSISTENCY_FILE_BYTES = ConsistencyProof.MAX_BYTES + 64


# -- files -----------------------------------------------------------------------------------
def read_bounded(path: Path, max_bytes: int, what: str) -> bytes:
    """Read at most ``max_bytes`` (+1, so that an oversize file is refused by its parser, or
    here). Raises CliError."""
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise CliError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise CliError(f"{path}: {what} larger than {max_bytes} bytes")
    return data


def read_checkpoint(path: Path) -> Checkpoint:
    """A checkpoint file (``TPLCKP1`` magic). Raises CliError."""
    data = read_bounded(path, MAX_CHECKPOINT_FILE_BYTES, "checkpoint")
    try:
        return Checkpoint.from_bytes(data)
    except LedgerError as exc:
        raise CliError(f"{path}: {exc}") from None


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable too
        dfd = os.open(path.parent or ".", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def check_consistency(old: Checkpoint, new: Checkpoint, path: Sequence[bytes],
                      genesis: Genesis) -> tuple[bool, str]:
    """Verify that the log at ``new`` extends the log at ``old`` (both certified)."""
    res = verify_consistency_proof(ConsistencyProof(old, new, tuple(path)), genesis)
    return res.ok, res.message


# -- witness ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ForkEvidence:
    """Two valid quorum certificates for different headers at one height."""

    height: int
    a: Checkpoint
    b: Checkpoint
    source_a: str
    source_b: str
    double_signers: tuple[int, ...]
    validator_names: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "tpledger-fork-evidence",
            "height": self.height,
            "double_signers": list(self.double_signers),
            "validators": list(self.validator_names),
            "a": {"source": self.source_a, "hash": self.a.header.hash().hex(),
                  "checkpoint": self.a.to_bytes().hex()},
            "b": {"source": self.source_b, "hash": self.b.header.hash().hex(),
                  "checkpoint": self.b.to_bytes().hex()},
        }

    def describe(self) -> str:
        names = ", ".join(f"{i} ({n})" for i, n in zip(self.double_signers,
                                                         self.validator_names, strict=True))
        return (f"FORK at height {self.height}: {self.source_a} certifies "
                f"{self.a.header.hash().hex()[:16]}…, {self.source_b} certifies "
                f"{self.b.header.hash().hex()[:16]}…; validators who signed both: "
                f"{names or 'none'}")


class Source(Protocol):
    """What the witness asks of the node that served a checkpoint."""

    name: str

    def checkpoint_at(self, height: int) -> Checkpoint: ...

    def consistency_path(self, old_size: int, new_size: int) -> list[bytes]: ...


@dataclass
class Outcome:
    """Result of observing one checkpoint."""

    status: str  # "advanced" | "same" | "behind" | "invalid" | "inconsistent" | "fork"
    message: str
    evidence: ForkEvidence | None = None


@dataclass
class Witness:
    """Holds the highest verified checkpoint; checks each new one against it.

    Pure logic: network access goes through the :class:`Source` passed to :meth:`observe`.
    """

    genesis: Genesis
    held: Checkpoint | None = None
    held_source: str = "state"
    seen: dict[int, tuple[Checkpoint, str]] = field(default_factory=dict)
    _held_src: Source | None = field(default=None, repr=False)

    def new_poll(self) -> None:
        """Forget the checkpoints seen in the last poll (the held one stays)."""
        self.seen.clear()

    def _fork(self, a: Checkpoint, sa: str, b: Checkpoint, sb: str) -> ForkEvidence:
        signers = tuple(double_signers(a.certificate, b.certificate))
        names = tuple(self.genesis.validators[i].name if i < len(self.genesis.validators)
                      else f"#{i}" for i in signers)
        return ForkEvidence(a.height, a, b, sa, sb, signers, names)

    def _compare_same_height(self, cp: Checkpoint, source: str) -> Outcome | None:
        prior = self.seen.get(cp.height)
        if prior is None and self.held is not None and self.held.height == cp.height:
            prior = (self.held, self.held_source)
        if prior is None:
            return None
        if prior[0].header.hash() != cp.header.hash():
            ev = self._fork(prior[0], prior[1], cp, source)
            return Outcome("fork", ev.describe(), ev)
        return Outcome("same", f"{source}: height {cp.height} matches")

    def observe(self, cp: Checkpoint, source: Source) -> Outcome:
        """Verify ``cp`` (served by ``source``) and check it against what is held.

        The consistency path comes from whichever node holds the larger tree: ``source`` when
        ``cp`` is newer, else the node that served the held checkpoint in this run (a node
        that is behind cannot prove anything about a tree it does not have yet).
        """
        res = verify_checkpoint(cp, self.genesis)
        if not res.ok:
            return Outcome("invalid", f"{source.name}: invalid checkpoint "
                                      f"({res.failure_code}): {res.message}")
        same = self._compare_same_height(cp, source.name)
        if same is not None:
            if same.status == "same":
                self.seen.setdefault(cp.height, (cp, source.name))
            return same
        self.seen[cp.height] = (cp, source.name)
        held = self.held
        if held is None:
            self._take(cp, source)
            return Outcome("advanced", f"{source.name}: first checkpoint, height {cp.height}")
        newer = cp.height > held.height
        old, new = (held, cp) if newer else (cp, held)
        prover = source if newer else self._held_src
        if prover is None:
            return Outcome("behind", f"{source.name}: behind at height {cp.height} "
                                     "(no node of this poll to prove consistency)")
        try:
            path = prover.consistency_path(old.tree_size, new.tree_size)
        except Exception as exc:  # a node error: report it, never crash the witness
            return Outcome("inconsistent", f"{prover.name}: no consistency proof: "
                                           f"{' '.join(str(exc).split())}")
        ok, message = check_consistency(old, new, path, self.genesis)
        if not ok:
            # Pin the divergence on two certificates at one height when the prover has one.
            try:
                theirs: Checkpoint | None = prover.checkpoint_at(old.height)
            except Exception:
                theirs = None
            if theirs is not None and verify_checkpoint(theirs, self.genesis).ok \
                    and theirs.header.hash() != old.header.hash():
                old_src = source.name if not newer else self.held_source
                ev = self._fork(old, old_src, theirs, prover.name)
                return Outcome("fork", ev.describe(), ev)
            return Outcome("inconsistent", f"{source.name}: height {new.height} does not "
                                           f"extend height {old.height}: {message}")
        if newer:
            self._take(cp, source)
            return Outcome("advanced", f"{source.name}: height {cp.height} extends "
                                       f"height {held.height}")
        return Outcome("behind", f"{source.name}: behind at height {cp.height}, consistent")

    def _take(self, cp: Checkpoint, source: Source) -> None:
        self.held, self.held_source, self._held_src = cp, source.name, source

    # -- state file --------------------------------------------------------------------------
    def state_json(self) -> dict[str, Any]:
        return {
            "kind": STATE_KIND,
            "version": 1,
            "chain_id": self.genesis.chain_id,
            "genesis_hash": self.genesis.hash().hex(),
            "checkpoint": self.held.to_bytes().hex() if self.held is not None else None,
            "source": self.held_source,
        }

    def save(self, path: Path) -> None:
        write_atomically(path, (json.dumps(self.state_json(), indent=1) + "\n").encode())

    @classmethod
    def load(cls, genesis: Genesis, path: Path) -> Witness:
        """The witness of a state file (a fresh one when the file does not exist)."""
        w = cls(genesis)
        if not path.exists():
            return w
        try:
            body = json.loads(read_bounded(path, MAX_STATE_FILE_BYTES, "witness state"))
            if body.get("kind") != STATE_KIND or body.get("version") != 1:
                raise CliError(f"{path}: not a witness state file")
            if body.get("genesis_hash") != genesis.hash().hex():
                raise CliError(f"{path}: witness state of another genesis")
            if body.get("checkpoint"):
                cp = Checkpoint.from_bytes(bytes.fromhex(body["checkpoint"]))
                res = verify_checkpoint(cp, genesis)
                if not res.ok:
                    raise CliError(f"{path}: held checkpoint does not verify: {res.message}")
                w.held, w.held_source = cp, str(body.get("source") or "state")
        except CliError:
            raise
        except (OSError, ValueError, TypeError, AttributeError, LedgerError) as exc:
            raise CliError(f"{path}: unreadable witness state ({type(exc).__name__})") from None
        return w


# -- statistics ------------------------------------------------------------------------------
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
    if h.height != height or h.chain_id != genesis.chain_id:
        raise CliError(f"block {height}: wrong height or chain")
    if cert.height != height or cert.block_hash != h.hash():
        raise CliError(f"block {height}: certificate is for another block")
    try:
        cert.check(genesis.chain_id, genesis.validator_keys)
    except SignatureError as exc:
        raise CliError(f"block {height}: {exc}") from None
    if txs_root(list(block.txs)) != h.txs_root:
        raise CliError(f"block {height}: transactions do not match the header")


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
    "ForkEvidence",
    "Outcome",
    "PayerTotals",
    "Source",
    "Stats",
    "Witness",
    "aggregate_blocks",
    "check_block",
    "check_consistency",
    "fetch_blocks",
    "read_checkpoint",
    "write_atomically",
]

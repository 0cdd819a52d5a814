"""The witness of ``tpledger witness``: checkpoints, consistency proofs, fork detection.

Everything here checks what nodes serve against the genesis alone (quorum certificates,
RFC 9162 consistency paths), so a witness trusts no node.

:class:`Witness` is the pure core: feed it checkpoints (and a way to fetch consistency paths
and older checkpoints from the node that served them, a :class:`Source`); it keeps the highest
verified checkpoint, checks every newer one extends it, and returns :class:`ForkEvidence` when
two valid certificates exist for one height. The network side (a node as a :class:`Source`,
the polling loop) is :mod:`cli.checkpoint_source`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tpledger.cli.bounded_files import MAX_CHECKPOINT_FILE_BYTES, read_bounded, write_atomically
from tpledger.cli.errors import CliError
from tpledger.ledger.errors import LedgerError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.proofs import (
    Checkpoint,
    ConsistencyProof,
    verify_checkpoint,
    verify_consistency_proof,
)
from tpledger.ledger.votes import classify_conflict, double_signers

STATE_KIND = "tpledger-witness-state"
MAX_STATE_FILE_BYTES = 4 * MAX_CHECKPOINT_FILE_BYTES + 4096  # one checkpoint, hex, in JSON


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
    proven: tuple[int, ...] = ()  # same round: signed two precommits in one round
    suspects: tuple[int, ...] = ()  # different rounds: may have unlocked legitimately

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "tpledger-fork-evidence",
            "height": self.height,
            "double_signers": list(self.double_signers),
            "proven_equivocators": list(self.proven),
            "suspects": list(self.suspects),
            "validators": list(self.validator_names),
            "a": {"source": self.source_a, "hash": self.a.header.hash().hex(),
                  "checkpoint": self.a.to_bytes().hex()},
            "b": {"source": self.source_b, "hash": self.b.header.hash().hex(),
                  "checkpoint": self.b.to_bytes().hex()},
        }

    def describe(self) -> str:
        names = dict(zip(self.double_signers, self.validator_names, strict=True))
        who = ", ".join(f"{i} ({names[i]})" for i in self.double_signers) or "none"
        blame = (" (same round: proven equivocators)" if self.proven else
                 " (different rounds: suspects, not proven)" if self.suspects else "")
        return (f"FORK at height {self.height}: {self.source_a} certifies "
                f"{self.a.header.hash().hex()[:16]}…, {self.source_b} certifies "
                f"{self.b.header.hash().hex()[:16]}…; validators who signed both: "
                f"{who}{blame}")


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
        blame = classify_conflict(a.certificate, b.certificate)
        return ForkEvidence(a.height, a, b, sa, sb, signers, names, blame.proven, blame.suspects)

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


__all__ = [
    "MAX_STATE_FILE_BYTES",
    "ForkEvidence",
    "Outcome",
    "Source",
    "Witness",
    "check_consistency",
]

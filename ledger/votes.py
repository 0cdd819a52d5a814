"""Consensus votes and commit certificates, as the ledger sees them.

A validator's precommit for a block is a signed :class:`Vote` with ``vote_type=PRECOMMIT`` and
``value_id`` = the block's header hash. A :class:`CommitCertificate` gathers at least a quorum
(> 2n/3) of such signatures from distinct validators of the genesis set; it is what makes a
block final, and what an offline verifier checks. ``consensus`` signs its votes with exactly these
bytes, so its precommits *are* the certificate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from tpledger.ledger.encoding import (
    HASH32,
    SIG,
    U32,
    U64,
    Int,
    ListOf,
    Nested,
    Optional,
    Record,
    spec,
)
from tpledger.ledger.errors import SignatureError
from tpledger.ledger.keys import Signer, verify

PREVOTE = 1
PRECOMMIT = 2
VOTE_KIND = "vote"
MAX_VALIDATORS = 256


def quorum(n: int) -> int:
    """Smallest number of votes that is more than two thirds of ``n``."""
    return (2 * n) // 3 + 1


def max_faulty(n: int) -> int:
    return (n - 1) // 3


@dataclass(frozen=True)
class Vote(Record):
    """A prevote or precommit; ``value_id`` None is a vote for nil."""

    TAG: ClassVar[int] = 0x30
    height: int = spec(U64)
    round: int = spec(U32)
    vote_type: int = spec(Int(PREVOTE, PRECOMMIT))
    value_id: bytes | None = spec(Optional(HASH32))
    validator: int = spec(Int(0, MAX_VALIDATORS - 1))

    def sign(self, chain_id: str, signer: Signer) -> SignedVote:
        return SignedVote(self, signer.sign(chain_id, VOTE_KIND, self.encode()))


@dataclass(frozen=True)
class SignedVote(Record):
    TAG: ClassVar[int] = 0x31
    vote: Vote = spec(Nested(Vote))
    signature: bytes = spec(SIG)

    def verify(self, chain_id: str, validator_keys: Sequence[bytes]) -> bool:
        idx = self.vote.validator
        if idx >= len(validator_keys):
            return False
        return verify(validator_keys[idx], chain_id, VOTE_KIND, self.vote.encode(), self.signature)


@dataclass(frozen=True)
class CertSignature(Record):
    TAG: ClassVar[int] = 0x32
    validator: int = spec(Int(0, MAX_VALIDATORS - 1))
    signature: bytes = spec(SIG)


@dataclass(frozen=True)
class CommitCertificate(Record):
    """Precommit signatures of a quorum of validators for one block at one height and round."""

    TAG: ClassVar[int] = 0x33
    height: int = spec(U64)
    round: int = spec(U32)
    block_hash: bytes = spec(HASH32)
    signatures: tuple[CertSignature, ...] = spec(ListOf(Nested(CertSignature), MAX_VALIDATORS, 1))

    def signers(self) -> list[int]:
        return [s.validator for s in self.signatures]

    def check(self, chain_id: str, validator_keys: Sequence[bytes]) -> None:
        """Raise :class:`SignatureError` unless this is a valid quorum certificate."""
        n = len(validator_keys)
        last = -1
        for s in self.signatures:
            if s.validator <= last:
                raise SignatureError("certificate signers are not strictly increasing")
            last = s.validator
            if s.validator >= n:
                raise SignatureError(f"certificate names unknown validator {s.validator}")
        if len(self.signatures) < quorum(n):
            raise SignatureError(
                f"certificate has {len(self.signatures)} signatures, quorum is {quorum(n)}"
            )
        for s in self.signatures:
            vote = Vote(self.height, self.round, PRECOMMIT, self.block_hash, s.validator)
            if not verify(validator_keys[s.validator], chain_id, VOTE_KIND, vote.encode(),
                          s.signature):
                raise SignatureError(f"bad precommit signature from validator {s.validator}")

    @classmethod
    def from_votes(cls, votes: Sequence[SignedVote]) -> CommitCertificate:
        """Build a certificate from precommits for one (height, round, block)."""
        if not votes:
            raise SignatureError("no votes")
        v0 = votes[0].vote
        by_idx: dict[int, bytes] = {}
        for sv in votes:
            v = sv.vote
            if (v.height, v.round, v.vote_type, v.value_id) != (
                v0.height, v0.round, PRECOMMIT, v0.value_id
            ) or v0.value_id is None:
                raise SignatureError("votes do not all precommit the same block")
            by_idx[v.validator] = sv.signature
        assert v0.value_id is not None
        sigs = tuple(CertSignature(i, by_idx[i]) for i in sorted(by_idx))
        return cls(v0.height, v0.round, v0.value_id, sigs)


def double_signers(a: CommitCertificate, b: CommitCertificate) -> list[int]:
    """Validators who signed both of two certificates for different blocks at one height.

    With n >= 3f+1 and two valid quorum certificates, at least f+1 indices come back: each of
    them signed precommits for both blocks (see :func:`classify_conflict` for who is proven
    faulty by that alone).
    """
    if a.height != b.height or a.block_hash == b.block_hash:
        return []
    return sorted(set(a.signers()) & set(b.signers()))


@dataclass(frozen=True)
class Accountability:
    """Who is to blame when two commit certificates conflict."""

    proven: tuple[int, ...]  # signed two different precommits in one round
    suspects: tuple[int, ...]  # signed precommits for different blocks in different rounds


def classify_conflict(a: CommitCertificate, b: CommitCertificate) -> Accountability:
    """Split :func:`double_signers` of two certificates into proven equivocators and suspects.

    Same round: every validator in both signed two different precommits for one (height,
    round), a proven equivocator. Different rounds: signing both is not by itself a violation
    (a validator may unlock on a newer proof-of-lock), so they are only suspects; proving who
    broke the locking rule needs the prevotes of the rounds in between (not collected here).
    """
    both = tuple(double_signers(a, b))
    if not both:
        return Accountability((), ())
    if a.round == b.round:
        return Accountability(both, ())
    return Accountability((), both)


__all__ = [
    "PRECOMMIT",
    "PREVOTE",
    "Accountability",
    "CertSignature",
    "CommitCertificate",
    "SignedVote",
    "Vote",
    "classify_conflict",
    "double_signers",
    "max_faulty",
    "quorum",
]

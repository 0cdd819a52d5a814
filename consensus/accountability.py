"""Who is to blame when two commit certificates conflict.

Reuses :func:`ledger.votes.double_signers` (validators in both of two certificates for different
blocks at one height). If both certificates are for the *same round*, every such validator signed
two different precommits for one (height, round): a proven equivocator. If the rounds differ,
signing both is not by itself a protocol violation (a validator may legitimately unlock via a
newer proof-of-lock), so the intersection is only a list of *suspects*; proving who broke the
locking rule needs the prevotes of the rounds in between (not collected here).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.votes import CommitCertificate, double_signers


@dataclass(frozen=True)
class Accountability:
    proven: tuple[int, ...]  # signed two different precommits in one round
    suspects: tuple[int, ...]  # signed precommits for different blocks in different rounds


def classify_conflict(a: CommitCertificate, b: CommitCertificate) -> Accountability:
    """Split :func:`double_signers` of two certificates into proven equivocators and suspects."""
    both = tuple(double_signers(a, b))
    if not both:
        return Accountability((), ())
    if a.round == b.round:
        return Accountability(both, ())
    return Accountability((), both)


__all__ = ["Accountability", "classify_conflict", "double_signers"]

"""The genesis file: chain id, validator set, registered participants, LPP table digest, limits.

The JSON file is the human form; its canonical :class:`Genesis` record's digest is the chain's
root of trust. An offline verifier needs nothing but this file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import tpledger.ledger.limits as limits
from tpledger.ledger.encoding import (
    HASH32,
    PUBKEY,
    U32,
    U64,
    Int,
    ListOf,
    Nested,
    OrgId,
    Record,
    Str,
    spec,
)
from tpledger.ledger.errors import EncodingError, GenesisError
from tpledger.ledger.jsonsafe import loads_bounded
from tpledger.ledger.votes import MAX_VALIDATORS, max_faulty, quorum

PARTICIPANT_ROLES = ("optician", "insurer", "cnam", "auditor")
MAX_PARTICIPANTS = 100_000
MAX_GENESIS_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Validator(Record):
    TAG: ClassVar[int] = 0x20
    name: str = spec(OrgId)
    org: str = spec(OrgId)
    ed25519: bytes = spec(PUBKEY)


@dataclass(frozen=True)
class Participant(Record):
    TAG: ClassVar[int] = 0x21
    org: str = spec(OrgId)
    role: str = spec(Str(16, 1))
    ed25519: bytes = spec(PUBKEY)
    x25519: bytes = spec(PUBKEY)


@dataclass(frozen=True)
class Params(Record):
    """Chain-wide limits every validator must agree on."""

    TAG: ClassVar[int] = 0x22
    max_block_txs: int = spec(Int(1, 100_000))
    max_block_bytes: int = spec(Int(limits.MIN_BLOCK_BYTES, limits.MAX_BLOCK_BYTES))
    max_tx_bytes: int = spec(Int(limits.MIN_TX_BYTES, limits.MAX_TX_BYTES))
    max_clock_drift_ms: int = spec(U32)

    def __post_init__(self) -> None:
        why = limits.block_limits_error(self.max_block_bytes, self.max_tx_bytes)
        if why is not None:  # refuse a chain the node could not run (ledger/limits.py)
            raise GenesisError(why)


DEFAULT_PARAMS = Params(
    max_block_txs=5000, max_block_bytes=4 * 1024 * 1024, max_tx_bytes=16 * 1024,
    max_clock_drift_ms=10_000,
)


@dataclass(frozen=True)
class Genesis(Record):
    TAG: ClassVar[int] = 0x23
    MAX_BYTES: ClassVar[int] = MAX_GENESIS_BYTES
    chain_id: str = spec(Str(64, 1, "abcdefghijklmnopqrstuvwxyz0123456789-_."))
    genesis_time_ms: int = spec(U64)
    validators: tuple[Validator, ...] = spec(ListOf(Nested(Validator), MAX_VALIDATORS, 1))
    participants: tuple[Participant, ...] = spec(ListOf(Nested(Participant), MAX_PARTICIPANTS))
    lpp_table_digest: bytes = spec(HASH32)
    params: Params = spec(Nested(Params))

    def __post_init__(self) -> None:
        names = [v.name for v in self.validators]
        if len(set(names)) != len(names):
            raise GenesisError("duplicate validator name")
        keys = [v.ed25519 for v in self.validators]
        if len(set(keys)) != len(keys):
            raise GenesisError("duplicate validator key")
        orgs = [p.org for p in self.participants]
        if len(set(orgs)) != len(orgs):
            raise GenesisError("duplicate participant org")
        for p in self.participants:
            if p.role not in PARTICIPANT_ROLES:
                raise GenesisError(f"participant {p.org}: unknown role {p.role!r}")

    # -- derived views -----------------------------------------------------------------------
    @property
    def validator_keys(self) -> tuple[bytes, ...]:
        return tuple(v.ed25519 for v in self.validators)

    @property
    def quorum(self) -> int:
        return quorum(len(self.validators))

    @property
    def max_faulty(self) -> int:
        return max_faulty(len(self.validators))

    def participant(self, org: str) -> Participant | None:
        for p in self.participants:
            if p.org == org:
                return p
        return None

    def participant_by_key(self, ed25519: bytes) -> Participant | None:
        for p in self.participants:
            if p.ed25519 == ed25519:
                return p
        return None

    def hash(self) -> bytes:
        return self.digest()

    # -- JSON form ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "tpledger-genesis",
            "version": 1,
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "validators": [
                {"name": v.name, "org": v.org, "ed25519": v.ed25519.hex()} for v in self.validators
            ],
            "participants": [
                {"org": p.org, "role": p.role, "ed25519": p.ed25519.hex(), "x25519": p.x25519.hex()}
                for p in self.participants
            ],
            "lpp_table_digest": self.lpp_table_digest.hex(),
            "params": {
                "max_block_txs": self.params.max_block_txs,
                "max_block_bytes": self.params.max_block_bytes,
                "max_tx_bytes": self.params.max_tx_bytes,
                "max_clock_drift_ms": self.params.max_clock_drift_ms,
            },
        }

    @classmethod
    def from_json(cls, body: Any) -> Genesis:
        try:
            if body.get("kind") != "tpledger-genesis" or body.get("version") != 1:
                raise GenesisError("not a tpledger genesis file (version 1)")
            pr = body["params"]
            return cls(
                chain_id=body["chain_id"],
                genesis_time_ms=body["genesis_time_ms"],
                validators=tuple(
                    Validator(v["name"], v["org"], bytes.fromhex(v["ed25519"]))
                    for v in body["validators"]
                ),
                participants=tuple(
                    Participant(
                        p["org"], p["role"], bytes.fromhex(p["ed25519"]), bytes.fromhex(p["x25519"])
                    )
                    for p in body["participants"]
                ),
                lpp_table_digest=bytes.fromhex(body["lpp_table_digest"]),
                params=Params(
                    pr["max_block_txs"], pr["max_block_bytes"], pr["max_tx_bytes"],
                    pr["max_clock_drift_ms"],
                ),
            ).validated()
        except GenesisError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, EncodingError) as exc:
            raise GenesisError(f"malformed genesis: {type(exc).__name__}: {exc}") from None

    def validated(self) -> Genesis:
        """Round-trip through the canonical codec, so every field is range-checked."""
        try:
            return Genesis.decode(self.encode())
        except EncodingError as exc:
            raise GenesisError(f"invalid genesis: {exc}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Genesis:
        p = Path(path)
        try:
            if p.stat().st_size > MAX_GENESIS_BYTES:
                raise GenesisError(f"{p}: genesis file too large")
            body = loads_bounded(p.read_bytes(), MAX_GENESIS_BYTES)
        except OSError as exc:
            raise GenesisError(f"{p}: cannot read genesis: {exc.strerror}") from None
        except ValueError as exc:
            raise GenesisError(f"{p}: genesis is not valid JSON: {exc}") from None
        return cls.from_json(body)

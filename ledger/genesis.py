"""The genesis file: chain id, validator set, registered participants, LPP table digest, limits,
and (version 2) the governing organisations with their admin keys and the governance policy.

The JSON file is the human form; its canonical :class:`Genesis` record's digest is the chain's
root of trust. An offline verifier needs nothing but this file. A version-1 JSON file still
loads: no governing organisation, participants without identifiers, :data:`V1_POLICY`.

Participants carry professional, public identifiers only (:class:`Identifiers`: RPPS, billing
number, SIRET, AMC number), checked by :func:`check_identifiers`; patients' data never enters
the genesis or the registry.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import tpledger.ledger.limits as limits
from tpledger.ledger.encoding import (
    DIGITS,
    HASH32,
    ID_CHARS,
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
MAX_GOV_ORGS = 64
MAX_ORG_ROLES = 4
DAY_MS = 86_400_000
QUORUM = "quorum"  # Policy.tariff_publisher: tariff versions go through quorum proposals

# Status of a registry record (participant or governing organisation).
ACTIVE, SUSPENDED, REVOKED = 1, 2, 3
STATUS_NAMES = {ACTIVE: "active", SUSPENDED: "suspended", REVOKED: "revoked"}

# La Poste's establishments (SIREN 356000000) have SIRETs checked by digit sum mod 5, except
# its head office, whose SIRET has an ordinary Luhn key (as python-stdnum checks them).
_LA_POSTE_SIREN = "356000000"
_LA_POSTE_HEAD_OFFICE = "35600000000048"


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of ASCII digits (False for anything else)."""
    if not digits or not (digits.isascii() and digits.isdigit()):
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i & 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def luhn_complete(payload: str) -> str:
    """``payload`` (ASCII digits) followed by its Luhn check digit: a valid SIRET or RPPS of
    that prefix (for synthetic registries: the bench's, the tests')."""
    return next(payload + d for d in "0123456789" if luhn_ok(payload + d))


def siret_ok(siret: str) -> bool:
    """A SIRET: 14 digits with a valid Luhn key (La Poste's: digit sum divisible by 5)."""
    if len(siret) != 14 or not (siret.isascii() and siret.isdigit()):
        return False
    if siret.startswith(_LA_POSTE_SIREN) and siret != _LA_POSTE_HEAD_OFFICE:
        return sum(ord(c) - 48 for c in siret) % 5 == 0
    return luhn_ok(siret)


@dataclass(frozen=True)
class Identifiers(Record):
    """A participant's professional, public identifiers ("" = none). Format here; the
    checks that depend on the role are :func:`check_identifiers`."""

    TAG: ClassVar[int] = 0x26
    rpps: str = spec(Str(11, 0, DIGITS), "")  # RPPS: 11 digits, Luhn key
    billing: str = spec(Str(9, 0, DIGITS), "")  # billing number (n° de facturation AM): 9 digits
    siret: str = spec(Str(14, 0, DIGITS), "")  # SIRET: 14 digits, Luhn key
    amc: str = spec(Str(10, 0, DIGITS), "")  # AMC number: 8 to 10 digits

    def is_empty(self) -> bool:
        return not (self.rpps or self.billing or self.siret or self.amc)

    def as_dict(self) -> dict[str, str]:
        """The identifiers given, by name (JSON form)."""
        return {k: v for k, v in (("rpps", self.rpps), ("billing", self.billing),
                                  ("siret", self.siret), ("amc", self.amc)) if v}


NO_IDS = Identifiers()


def _format_error(ids: Identifiers) -> str | None:
    if ids.rpps and (len(ids.rpps) != 11 or not luhn_ok(ids.rpps)):
        return "RPPS must be 11 digits with a valid Luhn key"
    if ids.billing and len(ids.billing) != 9:
        return "billing number must be 9 digits"
    if ids.siret and not siret_ok(ids.siret):
        return "SIRET must be 14 digits with a valid Luhn key"
    if ids.amc and not 8 <= len(ids.amc) <= 10:
        return "AMC number must be 8 to 10 digits"
    return None


def check_identifiers(role: str, ids: Identifiers) -> str | None:
    """Why ``ids`` are not valid identifiers of a participant of ``role`` (None: valid).

    optician: a SIRET, and an RPPS or a billing number, no AMC number; insurer: an AMC number,
    an optional SIRET, no RPPS; cnam/auditor: anything optional. Every value given must be
    well formed (SIRET and RPPS with their Luhn key)."""
    why = _format_error(ids)
    if why is not None:
        return why
    if role == "optician":
        if not ids.siret:
            return "an optician needs its SIRET"
        if not (ids.rpps or ids.billing):
            return "an optician needs an RPPS or a billing number"
        if ids.amc:
            return "an optician has no AMC number"
    elif role == "insurer":
        if not ids.amc:
            return "an insurer needs its AMC number"
        if ids.rpps:
            return "an insurer has no RPPS"
    elif role not in PARTICIPANT_ROLES:
        return f"unknown role {role!r}"
    return None


@dataclass(frozen=True)
class Validator(Record):
    TAG: ClassVar[int] = 0x20
    name: str = spec(OrgId)
    org: str = spec(OrgId)
    ed25519: bytes = spec(PUBKEY)


@dataclass(frozen=True)
class Participant(Record):
    """A participant of the genesis. Version 2 appended ``gov_org`` (the governing org whose
    admin manages it, "" = none) and ``ids``."""

    TAG: ClassVar[int] = 0x21
    VERSION: ClassVar[int] = 2
    org: str = spec(OrgId)
    role: str = spec(Str(16, 1))
    ed25519: bytes = spec(PUBKEY)
    x25519: bytes = spec(PUBKEY)
    gov_org: str = spec(Str(64, 0, ID_CHARS), "")
    ids: Identifiers = spec(Nested(Identifiers), NO_IDS)


@dataclass(frozen=True)
class GovOrg(Record):
    """A governing organisation: its admin key (distinct from every operational key) and the
    roles of the participants its admin may register."""

    TAG: ClassVar[int] = 0x24
    name: str = spec(OrgId)
    admin_ed25519: bytes = spec(PUBKEY)
    roles: tuple[str, ...] = spec(ListOf(Str(16, 1), MAX_ORG_ROLES, 1))


@dataclass(frozen=True)
class Policy(Record):
    """The governance policy: the quorum, who publishes tariffs, and time limits."""

    TAG: ClassVar[int] = 0x25
    threshold: int = spec(Int(1, MAX_GOV_ORGS))  # yes-ballots of distinct orgs to execute
    tariff_publisher: str = spec(Str(64, 1, ID_CHARS))  # an org name, or "quorum"
    max_claim_age_days: int = spec(Int(1, 3650))
    max_proposal_ttl_ms: int = spec(Int(1, 90 * DAY_MS))
    lpp_v1_effective_day: int = spec(U32)  # the genesis table is in force from this day


V1_POLICY = Policy(threshold=1, tariff_publisher=QUORUM, max_claim_age_days=3650,
                   max_proposal_ttl_ms=7 * DAY_MS, lpp_v1_effective_day=0)


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
    """Version 2 appended ``gov_orgs`` and ``policy``."""

    TAG: ClassVar[int] = 0x23
    VERSION: ClassVar[int] = 2
    MAX_BYTES: ClassVar[int] = MAX_GENESIS_BYTES
    chain_id: str = spec(Str(64, 1, "abcdefghijklmnopqrstuvwxyz0123456789-_."))
    genesis_time_ms: int = spec(U64)
    validators: tuple[Validator, ...] = spec(ListOf(Nested(Validator), MAX_VALIDATORS, 1))
    participants: tuple[Participant, ...] = spec(ListOf(Nested(Participant), MAX_PARTICIPANTS))
    lpp_table_digest: bytes = spec(HASH32)
    params: Params = spec(Nested(Params))
    gov_orgs: tuple[GovOrg, ...] = spec(ListOf(Nested(GovOrg), MAX_GOV_ORGS), ())
    policy: Policy = spec(Nested(Policy), V1_POLICY)

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
        keys = [p.ed25519 for p in self.participants]
        if len(set(keys)) != len(keys):  # a key names one registry slot, forever
            raise GenesisError("duplicate participant key")
        for p in self.participants:
            if p.role not in PARTICIPANT_ROLES:
                raise GenesisError(f"participant {p.org}: unknown role {p.role!r}")
        self._check_governance()

    def _check_governance(self) -> None:
        orgs = {o.name: o for o in self.gov_orgs}
        if len(orgs) != len(self.gov_orgs):
            raise GenesisError("duplicate governing organisation")
        admin_keys = [o.admin_ed25519 for o in self.gov_orgs]
        if len(set(admin_keys)) != len(admin_keys):
            raise GenesisError("duplicate admin key")
        operational = {v.ed25519 for v in self.validators} | {p.ed25519 for p in self.participants}
        if operational & set(admin_keys):
            raise GenesisError("an admin key is also a validator or participant key")
        for o in self.gov_orgs:
            if any(r not in PARTICIPANT_ROLES for r in o.roles):
                raise GenesisError(f"governing organisation {o.name}: unknown role")
        for p in self.participants:
            if p.gov_org and (p.gov_org not in orgs or p.role not in orgs[p.gov_org].roles):
                raise GenesisError(f"participant {p.org}: {p.gov_org!r} does not govern "
                                   f"{p.role}s")
            if self.gov_orgs or not p.ids.is_empty():  # a v1 genesis is exempt
                why = check_identifiers(p.role, p.ids)
                if why is not None:
                    raise GenesisError(f"participant {p.org}: {why}")
        pol = self.policy
        if pol.threshold > max(1, len(self.gov_orgs)):
            raise GenesisError("policy threshold exceeds the number of governing orgs")
        if pol.tariff_publisher != QUORUM and pol.tariff_publisher not in orgs:
            raise GenesisError("policy tariff publisher is neither 'quorum' nor an org")

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

    def hash(self) -> bytes:
        return self.digest()

    # -- JSON form ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "tpledger-genesis",
            "version": 2,
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "validators": [
                {"name": v.name, "org": v.org, "ed25519": v.ed25519.hex()} for v in self.validators
            ],
            "participants": [
                {"org": p.org, "role": p.role, "ed25519": p.ed25519.hex(),
                 "x25519": p.x25519.hex(), "gov_org": p.gov_org, "ids": p.ids.as_dict()}
                for p in self.participants
            ],
            "lpp_table_digest": self.lpp_table_digest.hex(),
            "params": {
                "max_block_txs": self.params.max_block_txs,
                "max_block_bytes": self.params.max_block_bytes,
                "max_tx_bytes": self.params.max_tx_bytes,
                "max_clock_drift_ms": self.params.max_clock_drift_ms,
            },
            "gov_orgs": [
                {"name": o.name, "admin_ed25519": o.admin_ed25519.hex(), "roles": list(o.roles)}
                for o in self.gov_orgs
            ],
            "policy": policy_json(self.policy),
        }

    @classmethod
    def from_json(cls, body: Any) -> Genesis:
        try:
            version = body.get("version")
            if body.get("kind") != "tpledger-genesis" or version not in (1, 2):
                raise GenesisError("not a tpledger genesis file (version 1 or 2)")
            pr = body["params"]
            v2 = version == 2
            return cls(
                chain_id=body["chain_id"],
                genesis_time_ms=body["genesis_time_ms"],
                validators=tuple(
                    Validator(v["name"], v["org"], bytes.fromhex(v["ed25519"]))
                    for v in body["validators"]
                ),
                participants=tuple(_participant_of_json(p, v2) for p in body["participants"]),
                lpp_table_digest=bytes.fromhex(body["lpp_table_digest"]),
                params=Params(
                    pr["max_block_txs"], pr["max_block_bytes"], pr["max_tx_bytes"],
                    pr["max_clock_drift_ms"],
                ),
                gov_orgs=tuple(
                    GovOrg(o["name"], bytes.fromhex(o["admin_ed25519"]), tuple(o["roles"]))
                    for o in body["gov_orgs"]
                ) if v2 else (),
                policy=_policy_of_json(body["policy"]) if v2 else V1_POLICY,
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


_EPOCH = datetime.date(1970, 1, 1)


def day_text(day: int) -> str:
    """A UTC day number (days since 1970-01-01) as YYYY-MM-DD."""
    return (_EPOCH + datetime.timedelta(days=day)).isoformat()


def parse_day(text: str) -> int:
    """YYYY-MM-DD as a UTC day number; ValueError if malformed."""
    if not isinstance(text, str) or len(text) != 10:
        raise ValueError(f"not a date YYYY-MM-DD: {text!r}")
    return (datetime.date.fromisoformat(text) - _EPOCH).days


def _participant_of_json(p: Any, v2: bool) -> Participant:
    key, box = bytes.fromhex(p["ed25519"]), bytes.fromhex(p["x25519"])
    if not v2:
        return Participant(p["org"], p["role"], key, box)
    ids = p["ids"]
    if not isinstance(ids, dict) or set(ids) - {"rpps", "billing", "siret", "amc"}:
        raise GenesisError(f"participant {p['org']!r}: ids has unknown fields")
    return Participant(p["org"], p["role"], key, box, p["gov_org"], Identifiers(**ids))


def policy_json(pol: Policy) -> dict[str, Any]:
    """A policy's JSON form (the genesis file's, and the node's proposals)."""
    return {"threshold": pol.threshold, "tariff_publisher": pol.tariff_publisher,
            "max_claim_age_days": pol.max_claim_age_days,
            "max_proposal_ttl_ms": pol.max_proposal_ttl_ms,
            "lpp_v1_effective": day_text(pol.lpp_v1_effective_day)}


def _policy_of_json(body: Any) -> Policy:
    return Policy(body["threshold"], body["tariff_publisher"], body["max_claim_age_days"],
                  body["max_proposal_ttl_ms"], parse_day(body["lpp_v1_effective"]))

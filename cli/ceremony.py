"""The genesis ceremony: each organisation generates its keys alone, one party assembles the
genesis from public files only, every organisation checks its SHA-256 out of band.

``keygen`` writes, in the organisation's own directory::

    DIR/STEM.key        the secret KeyFile (Ed25519 seed, X25519 secret), mode 0600 — never sent
    DIR/STEM.pub.json   {"kind": "tpledger-public-key", "version": 1, "org", "role", "ed25519",
                         "x25519"[, "validator": NAME][, "gov_org", "ids"][, "roles"]}
                        — the only file that leaves the host

STEM is the org for a participant, the validator's name for a validator key. A governing
organisation's admin key (``keygen ORG --admin --roles ...``) is ``ORG.admin.json`` and
``ORG.admin.pub.json`` (role "admin", the roles its admin may register): a file of its own,
never mixed with an operational key. A participant's public file carries its governing
organisation and its professional identifiers (SIRET, RPPS, billing or AMC number), checked
at keygen and again in the genesis. ``assemble`` reads public files and refuses any file
holding a secret, so that a mistaken ``--member org.key`` cannot carry one organisation's
secret into another's hands.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpledger.cli.bounded_files import read_bounded, write_atomically
from tpledger.cli.errors import CliError
from tpledger.ledger.encoding import OrgId
from tpledger.ledger.errors import EncodingError, LedgerError
from tpledger.ledger.genesis import (
    DAY_MS,
    DEFAULT_PARAMS,
    NO_IDS,
    PARTICIPANT_ROLES,
    QUORUM,
    V1_POLICY,
    Genesis,
    GovOrg,
    Identifiers,
    Participant,
    Policy,
    Validator,
    check_identifiers,
)
from tpledger.ledger.jsonsafe import loads_bounded
from tpledger.ledger.keys import KeyFile

PUBLIC_KIND = "tpledger-public-key"
MAX_PUBLIC_FILE_BYTES = 16 * 1024
SECRET_FIELDS = ("ed25519_seed", "x25519_secret")
ADMIN_ROLE = "admin"
ADMIN_STEM = "{org}.admin"  # ORG.admin.json / ORG.admin.pub.json
ID_FIELDS = ("rpps", "billing", "siret", "amc")


def _org_id(value: Any, what: str) -> str:
    try:
        return str(OrgId.to_wire(value, what))
    except EncodingError as exc:
        raise CliError(f"{what}: {exc} (lowercase letters, digits, '-', '_', '.')") from None


@dataclass(frozen=True)
class PublicKey:
    """One organisation's public keys, as exchanged during the ceremony."""

    org: str
    role: str
    ed25519: bytes
    x25519: bytes
    validator: str | None = None  # the validator's name in genesis (role "validator" only)
    gov_org: str = ""  # a participant's governing organisation ("" = none)
    ids: Identifiers = NO_IDS  # a participant's professional identifiers
    roles: tuple[str, ...] = ()  # an admin key: the roles its organisation registers

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": PUBLIC_KIND, "version": 1, "org": self.org,
                                "role": self.role, "ed25519": self.ed25519.hex(),
                                "x25519": self.x25519.hex()}
        if self.validator is not None:
            body["validator"] = self.validator
        if self.gov_org:
            body["gov_org"] = self.gov_org
        if not self.ids.is_empty():
            body["ids"] = self.ids.as_dict()
        if self.roles:
            body["roles"] = list(self.roles)
        return body

    @classmethod
    def load(cls, path: Path) -> PublicKey:
        """Read and check a public key file; refuse one that holds a secret. Raises CliError."""
        try:
            body = loads_bounded(read_bounded(path, MAX_PUBLIC_FILE_BYTES, "public key file"),
                                 MAX_PUBLIC_FILE_BYTES)
        except ValueError as exc:
            raise CliError(f"{path}: public key file is not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise CliError(f"{path}: not a tpledger public key file")
        if any(k in body for k in SECRET_FIELDS):
            raise CliError(f"{path}: holds a SECRET key; send and assemble only the .pub.json "
                           "file (the .key file never leaves its organisation)")
        if body.get("kind") != PUBLIC_KIND or body.get("version") != 1:
            raise CliError(f"{path}: not a tpledger public key file (version 1)")
        try:
            ed, x = bytes.fromhex(body["ed25519"]), bytes.fromhex(body["x25519"])
            role = body["role"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CliError(f"{path}: malformed public key file ({type(exc).__name__})") from None
        if len(ed) != 32 or len(x) != 32:
            raise CliError(f"{path}: ed25519 and x25519 must be 32-byte hex keys")
        if role not in ("validator", ADMIN_ROLE) and role not in PARTICIPANT_ROLES:
            raise CliError(f"{path}: unknown role {role!r}")
        validator = body.get("validator")
        if (role == "validator") != (validator is not None):
            raise CliError(f"{path}: a validator key, and only one, names its validator")
        org = _org_id(body.get("org"), f"{path}: org")
        gov_org = "" if body.get("gov_org") in (None, "") else _org_id(body["gov_org"],
                                                                       f"{path}: gov_org")
        return cls(org, role, ed, x,
                   None if validator is None else _org_id(validator, f"{path}: validator"),
                   gov_org, identifiers(body.get("ids", {}), role, f"{path}: ids"),
                   _roles_of(body.get("roles", []), role, f"{path}: roles"))


def identifiers(body: Any, role: str, what: str) -> Identifiers:
    """A participant's identifiers from JSON, checked for its role. Raises CliError."""
    if not isinstance(body, dict) or set(body) - set(ID_FIELDS) or not all(
            isinstance(v, str) for v in body.values()):
        raise CliError(f"{what}: expected an object with string fields {', '.join(ID_FIELDS)}")
    if body and role not in PARTICIPANT_ROLES:
        raise CliError(f"{what}: only a participant has identifiers")
    try:
        ids = Identifiers.decode(Identifiers(**body).encode())
    except EncodingError as exc:
        raise CliError(f"{what}: {exc}") from None
    why = None if ids.is_empty() else check_identifiers(role, ids)
    if why is not None:
        raise CliError(f"{what}: {why}")
    return ids


def _roles_of(body: Any, role: str, what: str) -> tuple[str, ...]:
    if not isinstance(body, list) or any(r not in PARTICIPANT_ROLES for r in body):
        raise CliError(f"{what}: a list of roles among {', '.join(PARTICIPANT_ROLES)}")
    if (role == ADMIN_ROLE) != bool(body):
        raise CliError(f"{what}: an admin key, and only one, names the roles it registers")
    if len(set(body)) != len(body):
        raise CliError(f"{what}: a role is listed twice")
    return tuple(body)


@dataclass(frozen=True)
class KeygenResult:
    secret: Path
    public: Path
    key: PublicKey


def keygen(org: str, role: str, out_dir: Path, validator: str | None = None,
           gov_org: str = "", ids: dict[str, str] | None = None) -> KeygenResult:
    """Generate one organisation's keys into ``out_dir`` (created 0700): the secret key file
    (0600, never overwritten) and its public file, with a participant's governing org and
    identifiers (checked for its role). Raises CliError."""
    org = _org_id(org, "ORG")
    if validator is not None:
        role, validator = "validator", _org_id(validator, "--validator")
    elif role not in PARTICIPANT_ROLES:
        raise CliError(f"--role must be one of {', '.join(PARTICIPANT_ROLES)}")
    if validator is not None and (gov_org or any((ids or {}).values())):
        raise CliError("a validator key has no governing organisation and no identifiers")
    idents = identifiers({k: v for k, v in (ids or {}).items() if v}, role, "identifiers")
    stem = validator or org
    return _generate(out_dir, stem, PublicKey(
        org, role, b"", b"", validator, _org_id(gov_org, "--gov-org") if gov_org else "",
        idents))


def keygen_admin(org: str, roles: Sequence[str], out_dir: Path) -> KeygenResult:
    """Generate a governing organisation's admin key: ``ORG.admin.json`` (0600) and
    ``ORG.admin.pub.json`` naming the roles its admin registers. Raises CliError."""
    org = _org_id(org, "ORG")
    return _generate(out_dir, ADMIN_STEM.format(org=org), PublicKey(
        org, ADMIN_ROLE, b"", b"", roles=_roles_of(list(roles), ADMIN_ROLE, "--roles")))


def _generate(out_dir: Path, stem: str, template: PublicKey) -> KeygenResult:
    """Write a fresh key pair for ``template`` (its keys filled in) as ``stem`` files."""
    suffix = ".json" if template.role == ADMIN_ROLE else ".key"
    secret, public = out_dir / f"{stem}{suffix}", out_dir / f"{stem}.pub.json"
    for p in (secret, public):
        if p.exists():
            raise CliError(f"{p}: already exists; refusing to overwrite a key")
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    kf = KeyFile.generate(template.org, template.role)
    kf.save(secret)  # O_EXCL, 0600
    pub = dataclasses.replace(template, ed25519=kf.signer.public, x25519=kf.box.public)
    write_atomically(public, (json.dumps(pub.to_json(), indent=2) + "\n").encode())
    os.chmod(public, 0o644)
    return KeygenResult(secret, public, pub)


def make_policy(n_orgs: int, threshold: int | None = None, tariff_publisher: str = QUORUM,
                max_claim_age_days: int = 730, proposal_ttl_days: int = 7,
                lpp_v1_effective_day: int = 0) -> Policy:
    """The governance policy of a genesis with ``n_orgs`` governing organisations; the
    threshold defaults to a majority of them. Raises CliError."""
    policy = Policy(threshold=n_orgs // 2 + 1 if threshold is None else threshold,
                    tariff_publisher=tariff_publisher, max_claim_age_days=max_claim_age_days,
                    max_proposal_ttl_ms=proposal_ttl_days * DAY_MS,
                    lpp_v1_effective_day=lpp_v1_effective_day)
    try:
        return Policy.decode(policy.encode())
    except EncodingError as exc:
        raise CliError(f"invalid policy: {exc}") from None


def assemble(chain_id: str, members: Sequence[Path], validators: Sequence[Path],
             genesis_time_ms: int | None = None, lpp_digest: bytes | None = None,
             admins: Sequence[Path] = (), policy: Policy | None = None) -> Genesis:
    """Build and validate a genesis from public key files only: validators, members
    (participants) and the governing organisations' admin keys, under ``policy`` (default: a
    majority of the organisations, tariffs by quorum). Raises CliError/LedgerError."""
    if not validators:
        raise CliError("a genesis needs at least one --validator public file")
    vals: list[Validator] = []
    for path in validators:
        pk = PublicKey.load(path)
        if pk.role != "validator" or pk.validator is None:
            raise CliError(f"{path}: not a validator key (made by `keygen ORG --validator NAME`)")
        vals.append(Validator(pk.validator, pk.org, pk.ed25519))
    parts: list[Participant] = []
    for path in members:
        pk = PublicKey.load(path)
        if pk.role == "validator":
            raise CliError(f"{path}: a validator key; pass it with --validator, not --member")
        if pk.role == ADMIN_ROLE:
            raise CliError(f"{path}: an admin key; pass it with --admin, not --member")
        parts.append(Participant(pk.org, pk.role, pk.ed25519, pk.x25519, pk.gov_org, pk.ids))
    orgs: list[GovOrg] = []
    for path in admins:
        pk = PublicKey.load(path)
        if pk.role != ADMIN_ROLE:
            raise CliError(f"{path}: not an admin key (made by `keygen ORG --admin --roles ...`)")
        orgs.append(GovOrg(pk.org, pk.ed25519, pk.roles))
    if policy is None:
        policy = make_policy(len(orgs)) if orgs else V1_POLICY
    if lpp_digest is None:
        from tpledger.ledger.lpp import LppTable  # in-flight module: imported when needed

        lpp_digest = LppTable.default().digest()
    try:
        return Genesis(
            chain_id=chain_id,
            genesis_time_ms=int(time.time() * 1000) if genesis_time_ms is None
            else genesis_time_ms,
            validators=tuple(vals), participants=tuple(parts),
            lpp_table_digest=lpp_digest, params=DEFAULT_PARAMS,
            gov_orgs=tuple(orgs), policy=policy,
        ).validated()
    except LedgerError as exc:
        raise CliError(f"invalid genesis: {exc}") from None


def genesis_bytes(genesis: Genesis) -> bytes:
    """The genesis file's bytes, as ``Genesis.save`` writes them (deterministic)."""
    return (json.dumps(genesis.to_json(), indent=2) + "\n").encode()


def write_genesis(genesis: Genesis, path: Path) -> str:
    """Write the genesis file (refusing to overwrite one); return the SHA-256 of its bytes."""
    if path.exists():
        raise CliError(f"{path}: already exists; refusing to overwrite a genesis")
    data = genesis_bytes(genesis)
    write_atomically(path, data)
    return hashlib.sha256(data).hexdigest()

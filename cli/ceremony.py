"""The genesis ceremony: each organisation generates its keys alone, one party assembles the
genesis from public files only, every organisation checks its SHA-256 out of band.

``keygen`` writes, in the organisation's own directory::

    DIR/STEM.key        the secret KeyFile (Ed25519 seed, X25519 secret), mode 0600 — never sent
    DIR/STEM.pub.json   {"kind": "tpledger-public-key", "version": 1, "org", "role", "ed25519",
                         "x25519"[, "validator": NAME]} — the only file that leaves the host

(STEM is the org for a participant, the validator's name for a validator key). ``assemble``
reads public files and refuses any file holding a secret, so that a mistaken
``--member org.key`` cannot carry one organisation's secret into another's hands.
"""

from __future__ import annotations

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
    DEFAULT_PARAMS,
    PARTICIPANT_ROLES,
    Genesis,
    Participant,
    Validator,
)
from tpledger.ledger.jsonsafe import loads_bounded
from tpledger.ledger.keys import KeyFile

PUBLIC_KIND = "tpledger-public-key"
MAX_PUBLIC_FILE_BYTES = 16 * 1024
SECRET_FIELDS = ("ed25519_seed", "x25519_secret")


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

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": PUBLIC_KIND, "version": 1, "org": self.org,
                                "role": self.role, "ed25519": self.ed25519.hex(),
                                "x25519": self.x25519.hex()}
        if self.validator is not None:
            body["validator"] = self.validator
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
        if role != "validator" and role not in PARTICIPANT_ROLES:
            raise CliError(f"{path}: unknown role {role!r}")
        validator = body.get("validator")
        if (role == "validator") != (validator is not None):
            raise CliError(f"{path}: a validator key, and only one, names its validator")
        return cls(_org_id(body.get("org"), f"{path}: org"), role, ed, x,
                   None if validator is None else _org_id(validator, f"{path}: validator"))


@dataclass(frozen=True)
class KeygenResult:
    secret: Path
    public: Path
    key: PublicKey


def keygen(org: str, role: str, out_dir: Path, validator: str | None = None) -> KeygenResult:
    """Generate one organisation's keys into ``out_dir`` (created 0700): the secret key file
    (0600, never overwritten) and its public file. Raises CliError."""
    org = _org_id(org, "ORG")
    if validator is not None:
        role, validator = "validator", _org_id(validator, "--validator")
    elif role not in PARTICIPANT_ROLES:
        raise CliError(f"--role must be one of {', '.join(PARTICIPANT_ROLES)}")
    stem = validator or org
    secret, public = out_dir / f"{stem}.key", out_dir / f"{stem}.pub.json"
    for p in (secret, public):
        if p.exists():
            raise CliError(f"{p}: already exists; refusing to overwrite a key")
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    kf = KeyFile.generate(org, role)
    kf.save(secret)  # O_EXCL, 0600
    pub = PublicKey(org, role, kf.signer.public, kf.box.public, validator)
    write_atomically(public, (json.dumps(pub.to_json(), indent=2) + "\n").encode())
    os.chmod(public, 0o644)
    return KeygenResult(secret, public, pub)


def assemble(chain_id: str, members: Sequence[Path], validators: Sequence[Path],
             genesis_time_ms: int | None = None, lpp_digest: bytes | None = None) -> Genesis:
    """Build and validate a genesis from public key files only. Raises CliError/LedgerError."""
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
        parts.append(Participant(pk.org, pk.role, pk.ed25519, pk.x25519))
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

"""Participants on the ledger, from the CLI: register, rotate, suspend, reinstate, revoke
(signed txs), and the participant directory read from a node (``GET /v1/participants``).

Who signs what (the rules check it again, ``ledger/gov_participants.py``):

- ``add``: the admin of the governing organisation named ``--gov-org`` (its admin key file
  ``ORG.admin.json``), from the new participant's public file (``keygen``): the admin never
  sees the participant's secret;
- ``rotate``: the participant itself with its current key (a new key pair is generated next to
  it; the old X25519 secret goes to the key history, ``cli/keys_history.py``), or its admin
  with the participant's new public file;
- ``suspend`` / ``reinstate`` / ``revoke``: its organisation's admin. A revocation takes effect
  from the block after the one that carries it.

The directory (:class:`Directory`) is what a claim's builder seals openings to: the insurer's
and the CNAM's *current* X25519 keys, read from the node's registry, not from the genesis.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpledger.cli.ceremony import PublicKey
from tpledger.cli.client import ClientError, NodeClient
from tpledger.cli.errors import CliError, Rejected
from tpledger.cli.paging import MAX_ROWS, follow_pages
from tpledger.ledger.encoding import OrgId
from tpledger.ledger.errors import EncodingError
from tpledger.ledger.genesis import Genesis, Identifiers
from tpledger.ledger.keys import KeyFile, Signer
from tpledger.ledger.tx import (
    CHANGE_NAMES,
    NONCE_BYTES,
    ROTATE,
    ParticipantAdd,
    ParticipantChange,
    SignedTx,
    sign_tx,
)

NEXT_SUFFIX = ".next"  # STEM.key.next: the new key of a rotation not yet committed
OPS = {name: op for op, name in CHANGE_NAMES.items()}
LIST_PAGE = 500
MAX_CACHED_PARTICIPANTS = 1024  # a run's payers (insurers, the CNAM): a handful


@dataclass(frozen=True)
class ParticipantInfo:
    """A participant as the registry in force shows it (public, professional data)."""

    org: str
    role: str
    ed25519: bytes
    x25519: bytes
    status: str  # "active" | "suspended" | "revoked"

    @classmethod
    def of_json(cls, body: Any) -> ParticipantInfo:
        try:
            info = cls(str(body["org"]), str(body["role"]), bytes.fromhex(body["ed25519"]),
                       bytes.fromhex(body["x25519"]), str(body["status"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CliError(f"malformed participant record from the node "
                           f"({type(exc).__name__})") from None
        if len(info.ed25519) != 32 or len(info.x25519) != 32:
            raise CliError("malformed participant record from the node (key length)")
        return info


Directory = Callable[[str], ParticipantInfo | None]


def genesis_directory(genesis: Genesis) -> Directory:
    """The participants of the genesis (no node at hand: the keys registered at genesis)."""
    def lookup(org: str) -> ParticipantInfo | None:
        p = genesis.participant(org)
        return None if p is None else ParticipantInfo(p.org, p.role, p.ed25519, p.x25519,
                                                      "active")
    return lookup


def node_directory(client: NodeClient) -> Directory:
    """The registry in force on the node, one signed read per org (cached for this run, at
    most :data:`MAX_CACHED_PARTICIPANTS` orgs, as ``governance.node_tariff`` caches days)."""
    return functools.lru_cache(maxsize=MAX_CACHED_PARTICIPANTS)(
        lambda org: fetch_participant(client, org))


def is_org_id(text: str) -> bool:
    """An org id (the ledger's :data:`~ledger.encoding.OrgId`), safe to put in a URL path
    (not only dots)."""
    try:
        OrgId.to_wire(text, "org")
    except EncodingError:
        return False
    return text.strip(".") != ""


def fetch_participant(client: NodeClient, org: str) -> ParticipantInfo | None:
    """``GET /v1/participants/{org}`` (None: no such participant). A refusal of the signer's
    own key (revoked, suspended) is the ledger's refusal: :class:`Rejected` (exit 4)."""
    if not is_org_id(org):
        return None
    try:
        body = client.get_json(f"/v1/participants/{org}", signed=True)
    except ClientError as exc:
        if exc.code == "unknown_participant":
            return None
        if exc.code in ("revoked_signer", "suspended_signer"):
            raise Rejected(f"the ledger refuses this key: {exc.code}: {exc.message}") from None
        raise
    return ParticipantInfo.of_json(body)


def show_participant(client: NodeClient, org: str) -> dict[str, Any]:
    """The node's full record of ``org`` (with its key history). Raises CliError."""
    if not is_org_id(org):
        raise CliError(f"not an org id: {org[:70]!r} (lowercase letters, digits, '-_.')")
    try:
        body = client.get_json(f"/v1/participants/{org}", signed=True)
    except ClientError as exc:
        if exc.code == "unknown_participant":
            raise CliError(f"no participant {org!r} in the registry") from None
        raise
    if not isinstance(body, dict):
        raise CliError("malformed participant record from the node")
    return body


def list_participants(client: NodeClient, role: str | None, status: str | None,
                      max_rows: int = MAX_ROWS) -> list[dict[str, Any]]:
    """Every participant (paged through ``GET /v1/participants``), filtered."""
    return follow_pages(client, "/v1/participants", "participants", "participant list",
                        page=LIST_PAGE, query=f"&role={role}" if role else "", signed=True,
                        max_rows=max_rows,
                        keep=lambda r: status is None or r.get("status") == status)


# -- transactions ----------------------------------------------------------------------------
def build_add(chain_id: str, admin: Signer, pub: PublicKey, gov_org: str,
              ids: Identifiers) -> SignedTx:
    """The admin of ``gov_org`` registers the participant of public file ``pub``."""
    if pub.role in ("validator", "admin"):
        raise CliError(f"a {pub.role} key is not a participant's key")
    return sign_tx(chain_id, admin, ParticipantAdd(pub.org, gov_org, pub.role, pub.ed25519,
                                                   pub.x25519, ids))


def build_change(chain_id: str, signer: Signer, org: str, op: int,
                 new: PublicKey | KeyFile | None, reason: str) -> SignedTx:
    """Rotate (to ``new``'s keys), suspend, reinstate or revoke participant ``org``."""
    if (op == ROTATE) != (new is not None):
        raise CliError("a rotation, and only a rotation, names the new keys")
    ed = x = None
    if isinstance(new, KeyFile):
        ed, x = new.signer.public, new.box.public
    elif new is not None:
        ed, x = new.ed25519, new.x25519
    return sign_tx(chain_id, signer, ParticipantChange(org, op, ed, x, reason,
                                                       os.urandom(NONCE_BYTES)))


def next_key_path(key_path: Path) -> Path:
    """``STEM.key.next`` beside the key file: the new key of a rotation not yet committed."""
    return key_path.with_name(key_path.name + NEXT_SUFFIX)


def next_key(key_path: Path, old: KeyFile) -> KeyFile:
    """The new key of a self-rotation: ``STEM.key.next`` (0600), generated once and reused by
    a rerun, so that a crash after the commit never loses the new secret."""
    path = next_key_path(key_path)
    if path.exists():
        new = KeyFile.load(path)
        if (new.org, new.role) != (old.org, old.role):
            raise CliError(f"{path}: a pending new key of another participant; remove it")
        return new
    new = KeyFile.generate(old.org, old.role)
    new.save(path)
    return new


def install_next_key(key_path: Path, old: KeyFile, height: int) -> Path:
    """After the rotation committed: keep the old X25519 secret in the history, then put the
    new key in place of the old one (atomic rename). Returns the history file."""
    from tpledger.cli.keys_history import append_history, history_path

    hist = history_path(key_path)
    append_history(hist, old, height)
    os.replace(next_key_path(key_path), key_path)
    return hist


def rotation_committed(node_url: str, chain_id: str, new: KeyFile) -> int | None:
    """The height at which ``new`` became the participant's key, if a rotation to it is
    already committed (a rerun after a crash or a timeout); None otherwise. The read is signed
    with the new key itself: the node refuses it while that key is not registered."""
    try:
        with NodeClient(node_url, signer=new.signer, chain_id=chain_id) as client:
            body = client.get_json(f"/v1/participants/{new.org}", signed=True)
    except ClientError as exc:
        if exc.status in (401, 403):
            return None
        raise
    if isinstance(body, dict) and body.get("ed25519") == new.signer.public.hex():
        return int(body.get("since_height") or 0)
    return None

"""Governance from the client's side: quorum proposals, ballots and tariff publications.

The pure part turns what an admin types (``--action add-org:NAME:PUB:ROLES``, a CSV table and a
date) into the ledger's records (:class:`~ledger.registry.GovAction`,
:class:`~ledger.registry.TariffRelease`) and signs the tx bodies with the organisation's
**admin** key (never an operational key). The read part fetches what the node shows: the
tariff in force on a day, the tariff versions, the proposals. Every malformed value is a
:class:`~cli.errors.UsageError` (exit 2, nothing sent), every node answer that does not parse a
:class:`~cli.errors.CliError`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpledger.cli.bounded_files import read_bounded
from tpledger.cli.ceremony import ADMIN_ROLE
from tpledger.cli.client import NodeClient
from tpledger.cli.errors import CliError, UsageError
from tpledger.ledger.errors import EncodingError, LedgerError
from tpledger.ledger.genesis import DAY_MS, Policy, day_text
from tpledger.ledger.genesis import parse_day as parse_day_text
from tpledger.ledger.jsonsafe import loads_bounded
from tpledger.ledger.keys import KeyFile, Signer
from tpledger.ledger.lpp import LppEntry, LppTable
from tpledger.ledger.registry import (
    ADD_ORG,
    GOV_OP_NAMES,
    MAX_ACTIONS,
    MAX_TARIFF_ROWS,
    PUBLISH_TARIFF,
    REMOVE_ORG,
    SET_ADMIN_KEY,
    SET_POLICY,
    GovAction,
    LppRow,
    TariffRelease,
)
from tpledger.ledger.tx import NONCE_BYTES, GovBallot, GovPropose, LppPublish, SignedTx, sign_tx

MAX_POLICY_FILE_BYTES = 4096
MAX_PUB_FILE_BYTES = 64 * 1024
ACTION_FORMS = (
    "add-org:NAME:ADMIN_PUB:ROLE[,ROLE...]",
    "remove-org:NAME",
    "set-admin:NAME:ADMIN_PUB",
    "set-policy:FILE.json",
    "publish-tariff:FILE.csv@YYYY-MM-DD",
)
_DURATION = re.compile(r"^([0-9]{1,6})([smhd])$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


# -- values ----------------------------------------------------------------------------------
def parse_day(text: str, what: str = "--effective") -> int:
    """``YYYY-MM-DD`` as UTC days since 1970-01-01 (what the ledger calls a day)."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text.strip()):
        raise UsageError(f"{what}: a date is YYYY-MM-DD, got {text[:40]!r}")
    try:
        day = parse_day_text(text.strip())
    except ValueError:
        raise UsageError(f"{what}: no such date {text[:40]!r}") from None
    if day < 0:
        raise UsageError(f"{what}: a date from 1970-01-01 on")
    return day


format_day = day_text  # days since 1970-01-01 as YYYY-MM-DD (the genesis file's form)


def parse_duration_ms(text: str, what: str = "--expires") -> int:
    """``90s``, ``30m``, ``12h`` or ``7d`` in milliseconds (more than 0)."""
    m = _DURATION.fullmatch(text.strip())
    if m is None or int(m.group(1)) == 0:
        raise UsageError(f"{what}: a duration is a number and a unit s, m, h or d, e.g. 7d; "
                         f"got {text[:40]!r}")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def parse_pubkey(text: str, what: str) -> bytes:
    """An Ed25519 public key: 64 hex characters, or a public key file (``ORG.admin.pub.json``,
    ``ORG.pub.json``) holding ``admin_ed25519`` or ``ed25519``."""
    if _HEX64.fullmatch(text):
        return bytes.fromhex(text)
    path = Path(text)
    if not path.is_file():
        raise UsageError(f"{what}: a public key is 64 hex characters or a .pub.json file; "
                         f"{text[:80]!r} is neither")
    try:
        body = loads_bounded(read_bounded(path, MAX_PUB_FILE_BYTES, "a public key file"),
                             MAX_PUB_FILE_BYTES)
    except ValueError:
        raise UsageError(f"{what}: {path} is not JSON") from None
    value = None
    if isinstance(body, dict):
        value = body.get("admin_ed25519", body.get("ed25519"))
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise UsageError(f"{what}: {path} has no ed25519 public key (64 hex)")
    return bytes.fromhex(value)


def parse_proposal_id(text: str) -> bytes:
    """A proposal id: the 64-hex id of the tx that proposed it."""
    if not _HEX64.fullmatch(text.strip()):
        raise UsageError(f"a proposal id is 64 hex characters, got {text[:70]!r}")
    return bytes.fromhex(text.strip())


@dataclass(frozen=True)
class AdminKey:
    """A governing organisation's admin key (the org's name and its signer)."""

    org: str
    signer: Signer


def load_admin_key(path: Path) -> AdminKey:
    """An admin key file (``ORG.admin.json``, written by ``keygen ORG --admin``: a key file
    of role "admin"). An operational key is refused: it cannot govern."""
    key = KeyFile.load(path)
    if key.role != ADMIN_ROLE:
        raise UsageError(f"{path}: a {key.role} key, not an organisation's admin key "
                         "(ORG.admin.json)")
    return AdminKey(key.org, key.signer)


# -- tariffs ---------------------------------------------------------------------------------
def rows_of(table: LppTable) -> tuple[LppRow, ...]:
    """The table's entries as ledger rows (sorted by code, as the table digest is)."""
    return tuple(LppRow.of(e) for e in table)


def load_table(path: Path) -> LppTable:
    """An LPP CSV file (the seed format), bounded; a bad file is a usage error."""
    try:
        table = LppTable.load_csv(path)
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    if not 1 <= len(table) <= MAX_TARIFF_ROWS:
        raise UsageError(f"{path}: a tariff version has 1 to {MAX_TARIFF_ROWS} codes, this one "
                         f"{len(table)}")
    return table


def release_of(table: LppTable, version: int, effective_day: int) -> TariffRelease:
    """The full-table release of ``table`` as version ``version`` from ``effective_day``."""
    release = TariffRelease(version, effective_day, table.digest(), rows_of(table))
    try:
        release.encode()
    except EncodingError as exc:
        raise UsageError(f"tariff release: {exc}") from None
    return release


# -- action specs ----------------------------------------------------------------------------
def _action(**fields: Any) -> GovAction:
    values: dict[str, Any] = {"org": "", "admin_ed25519": None, "roles": (), "policy": None,
                              "tariff": None}
    values.update(fields)
    action = GovAction(**values)
    try:
        action.encode()
    except EncodingError as exc:
        raise UsageError(f"--action {GOV_OP_NAMES[values['op']]}: {exc}") from None
    return action


def parse_policy_file(path: Path) -> Policy:
    """A policy JSON file, as in the genesis: ``threshold``, ``tariff_publisher``,
    ``max_claim_age_days``, ``max_proposal_ttl`` (``7d``) or ``max_proposal_ttl_ms``,
    ``lpp_v1_effective`` (YYYY-MM-DD)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such policy file")
    try:
        body = loads_bounded(read_bounded(path, MAX_POLICY_FILE_BYTES, "a policy file"),
                             MAX_POLICY_FILE_BYTES)
    except ValueError:
        raise UsageError(f"{path}: not JSON") from None
    known = {"threshold", "tariff_publisher", "max_claim_age_days", "max_proposal_ttl",
             "max_proposal_ttl_ms", "lpp_v1_effective"}
    if not isinstance(body, dict) or set(body) - known:
        raise UsageError(f"{path}: a policy is an object with keys {', '.join(sorted(known))}")
    try:
        ttl = body.get("max_proposal_ttl_ms")
        if ttl is None:
            ttl = parse_duration_ms(str(body["max_proposal_ttl"]), f"{path}: max_proposal_ttl")
        policy = Policy(int(body["threshold"]), str(body["tariff_publisher"]),
                        int(body["max_claim_age_days"]), int(ttl),
                        parse_day(str(body["lpp_v1_effective"]), f"{path}: lpp_v1_effective"))
        policy.encode()
    except KeyError as exc:
        raise UsageError(f"{path}: missing {exc.args[0]}") from None
    except (TypeError, ValueError, EncodingError) as exc:
        raise UsageError(f"{path}: {exc}") from None
    return policy


def parse_action_spec(spec: str, tariff_version: int = 2) -> GovAction:
    """One ``--action``: see :data:`ACTION_FORMS`. ``tariff_version`` is the version a
    ``publish-tariff`` action carries (the latest on the ledger + 1)."""
    op, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise UsageError(f"--action: expected one of {', '.join(ACTION_FORMS)}; got "
                         f"{spec[:80]!r}")
    if op == "add-org":
        name, _, rest = rest.partition(":")
        pub, _, roles = rest.rpartition(":")
        if not (name and pub and roles):
            raise UsageError(f"--action add-org: expected {ACTION_FORMS[0]}")
        return _action(op=ADD_ORG, org=name, admin_ed25519=parse_pubkey(pub, "--action add-org"),
                       roles=tuple(r.strip() for r in roles.split(",")))
    if op == "remove-org":
        return _action(op=REMOVE_ORG, org=rest)
    if op == "set-admin":
        name, _, pub = rest.partition(":")
        if not (name and pub):
            raise UsageError(f"--action set-admin: expected {ACTION_FORMS[2]}")
        return _action(op=SET_ADMIN_KEY, org=name,
                       admin_ed25519=parse_pubkey(pub, "--action set-admin"))
    if op == "set-policy":
        return _action(op=SET_POLICY, policy=parse_policy_file(Path(rest)))
    if op == "publish-tariff":
        file, _, date = rest.rpartition("@")
        if not (file and date):
            raise UsageError(f"--action publish-tariff: expected {ACTION_FORMS[4]}")
        release = release_of(load_table(Path(file)), tariff_version,
                             parse_day(date, "--action publish-tariff"))
        return _action(op=PUBLISH_TARIFF, tariff=release)
    raise UsageError(f"--action: unknown action {op[:40]!r}; expected one of "
                     f"{', '.join(ACTION_FORMS)}")


def with_tariff_version(action: GovAction, version: int) -> GovAction:
    """``action`` with its tariff release numbered ``version`` (a publish-tariff action; any
    other as it is): the parsed action renumbered, its files not read again."""
    if action.tariff is None:
        return action
    return _action(**{**{f.name: getattr(action, f.name) for f in dataclasses.fields(action)},
                      "tariff": dataclasses.replace(action.tariff, version=version)})


# -- signed bodies ---------------------------------------------------------------------------
def _signed(chain_id: str, admin: Signer, body: GovPropose | GovBallot | LppPublish) -> SignedTx:
    try:
        return sign_tx(chain_id, admin, body)
    except EncodingError as exc:
        raise UsageError(str(exc)) from None


def build_propose(chain_id: str, admin: Signer, actions: Sequence[GovAction],
                  expires_at_ms: int, nonce: bytes | None = None) -> SignedTx:
    """A proposal of ``actions`` (1 to 8) signed by a governing organisation's admin; its id
    is the tx id. The nonce makes two equal proposals two proposals."""
    if not 1 <= len(actions) <= MAX_ACTIONS:
        raise UsageError(f"a proposal has 1 to {MAX_ACTIONS} actions, not {len(actions)}")
    return _signed(chain_id, admin, GovPropose(tuple(actions), expires_at_ms,
                                               nonce or os.urandom(NONCE_BYTES)))


def build_ballot(chain_id: str, admin: Signer, proposal_id: bytes, approve: bool) -> SignedTx:
    """A yes or no ballot on a proposal, signed by a governing organisation's admin."""
    return _signed(chain_id, admin, GovBallot(proposal_id, approve))


def build_publish(chain_id: str, admin: Signer, release: TariffRelease) -> SignedTx:
    """A direct tariff publication, signed by the tariff publisher's admin."""
    return _signed(chain_id, admin, LppPublish(release))


def send_admin_tx(node_url: str, admin_key_path: Path, genesis: Path | None,
                  build: Callable[[NodeClient, str, Signer], SignedTx], wait: bool,
                  timeout_s: float) -> tuple[dict[str, Any], str]:
    """Load the admin key (and the chain's genesis next to it, or ``genesis``), build the tx
    with ``build(client, chain_id, admin)``, submit it (``wait``: until committed); the tx's
    row (``status`` rejected: with the ledger's code) and the admin's organisation."""
    from tpledger.cli.lifecycle import submit_signed
    from tpledger.cli.options import load_genesis_for

    admin = load_admin_key(admin_key_path)
    chain_id = load_genesis_for(admin_key_path, genesis).chain_id
    with NodeClient(node_url, signer=admin.signer, chain_id=chain_id) as client:
        row = submit_signed(client, build(client, chain_id, admin.signer), wait, timeout_s)
    return row, admin.org


# -- reads -----------------------------------------------------------------------------------
def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise CliError(f"the node's {what} answer is not a JSON object")
    return body


def tariff_versions(client: NodeClient, day: int | None = None) -> dict[str, Any]:
    """``GET /v1/lpp/versions[?at=DATE]`` (a signed read)."""
    qs = f"?at={format_day(day)}" if day is not None else ""
    return _object(client.get_json(f"/v1/lpp/versions{qs}", signed=True), "tariff versions")


def latest_tariff_version(client: NodeClient) -> int:
    """The highest tariff version on the ledger (1: only the genesis table)."""
    versions = tariff_versions(client).get("versions")
    if not isinstance(versions, list):
        raise CliError("the node's tariff versions answer has no version list")
    numbers = [v.get("version") for v in versions if isinstance(v, dict)]
    return max([n for n in numbers if isinstance(n, int)] or [1])


def _entry_of(row: Any) -> LppEntry:
    if not isinstance(row, dict):
        raise CliError("the node's tariff row is not a JSON object")
    try:
        return LppEntry(str(row["code"]), str(row["label"]), str(row["category"]),
                        str(row["age_group"]), row.get("class") or None,
                        row.get("max_price_cents"), row.get("amo_base_cents"))
    except (KeyError, LedgerError) as exc:
        raise CliError(f"the node's tariff row is malformed ({exc})") from None


@dataclass(frozen=True)
class TariffAt:
    """The tariff version in force on a day, as the node serves it."""

    version: int
    effective_day: int
    table: LppTable


def fetch_tariff_version(client: NodeClient, day: int) -> TariffAt:
    """The tariff version in force on ``day``; its rows are checked against the digest the
    node names (a mismatch, a malformed row or no version in force: a CliError)."""
    body = tariff_versions(client, day)
    rows, version, effective = body.get("rows"), body.get("version"), body.get("effective")
    if not isinstance(rows, list) or not isinstance(version, int):
        raise CliError(f"no tariff in force on {format_day(day)} (the node names no version)")
    try:
        table = LppTable((_entry_of(r) for r in rows), str(version))
    except LedgerError as exc:
        raise CliError(f"the node's tariff table is malformed ({exc})") from None
    if body.get("table_digest") != table.digest().hex():
        raise CliError(f"the node's tariff v{version} rows do not match its digest")
    eff = parse_day(effective, "the node's effective date") if isinstance(effective, str) else 0
    return TariffAt(version, eff, table)


def fetch_tariff_at(client: NodeClient, day: int) -> LppTable:
    """The table in force on ``day`` (its ``version`` is the version number)."""
    return fetch_tariff_version(client, day).table


MAX_CACHED_TARIFF_DAYS = 8  # a run dates its claims today (two days if it spans midnight)


def node_tariff(client: NodeClient) -> Callable[[int], LppTable]:
    """The table in force on a UTC day, from the node (:func:`fetch_tariff_at`, its digest
    checked): one signed read per day for this run (``cli.claims.ClaimBuilder``'s tariff)."""
    return functools.lru_cache(maxsize=MAX_CACHED_TARIFF_DAYS)(
        lambda day: fetch_tariff_at(client, day))


def fetch_proposals(client: NodeClient, status: str | None, limit: int,
                    after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``GET /v1/gov/proposals`` and the cursor of the next one."""
    qs = f"?limit={int(limit)}"
    if status is not None:
        qs += f"&status={status}"
    if after is not None:
        qs += f"&after={parse_proposal_id(after).hex()}"
    body = _object(client.get_json(f"/v1/gov/proposals{qs}", signed=True), "proposals")
    rows = body.get("proposals")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CliError("the node's proposals answer is not a list of objects")
    nxt = body.get("next")
    return rows, nxt if isinstance(nxt, str) else None


def fetch_proposal(client: NodeClient, proposal_id: bytes) -> dict[str, Any]:
    """``GET /v1/gov/proposals/{id}``."""
    return _object(client.get_json(f"/v1/gov/proposals/{proposal_id.hex()}", signed=True),
                   "proposal")


__all__ = [
    "ACTION_FORMS",
    "DAY_MS",
    "AdminKey",
    "TariffAt",
    "build_ballot",
    "build_propose",
    "build_publish",
    "fetch_proposal",
    "fetch_proposals",
    "fetch_tariff_at",
    "fetch_tariff_version",
    "format_day",
    "latest_tariff_version",
    "load_admin_key",
    "load_table",
    "node_tariff",
    "parse_action_spec",
    "parse_day",
    "parse_duration_ms",
    "parse_policy_file",
    "parse_proposal_id",
    "parse_pubkey",
    "release_of",
    "rows_of",
    "send_admin_tx",
    "tariff_versions",
    "with_tariff_version",
]

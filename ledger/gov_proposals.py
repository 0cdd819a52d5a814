"""Quorum governance and tariff versions: proposals, ballots, direct tariff publication.

| code                 | when                                                                  |
|----------------------|-----------------------------------------------------------------------|
| ``not_authorised``   | the signer is not an active governing organisation's admin; a direct  |
|                      | publish by another org than ``policy.tariff_publisher``; a tariff     |
|                      | action in a proposal while the policy names a publisher               |
| ``proposal_expired`` | a proposal already expired at its block time; a ballot at or after    |
|                      | the proposal's expiry (nothing is written: it never executes)         |
| ``bad_proposal``     | a proposal expiring later than block time + ``max_proposal_ttl_ms``   |
| ``bad_action``       | an action that is invalid on the state at that point (index named)    |
| ``unknown_proposal`` | a ballot for a proposal id that is not on the ledger                  |
| ``proposal_closed``  | a ballot for an executed or failed proposal                           |
| ``ballot_replayed``  | a second ballot of one organisation on one proposal (either way)      |
| ``bad_tariff_version`` | a release whose version is not latest + 1, or whose effective day   |
|                      | is not after the latest version's                                     |
| ``bad_tariff``       | a release row that is not a valid LPP entry, or two rows with a code  |
| ``bad_tariff_digest``| a release whose ``table_digest`` is not the digest of its rows        |

Semantics (docs/governance.md): the signer, the threshold, the publisher and the set of
voting organisations are those of the registry in force for the block
(``view.registry()``, the state after the previous block); what an action is checked against
is the pending state (``view``: the block's earlier writes included). A proposal executes at
the tx whose yes-ballots of active organisations reach the threshold: its actions are checked
again and applied in order, all or nothing (a nested overlay), else it is ``FAILED`` with the
failing code as its outcome. The ballot that closes it is accepted either way.

Handlers check everything first and write last, like every rule handler; they import
:mod:`ledger.registry` and :mod:`ledger.state`, never :mod:`ledger.rules`.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tpledger.ledger.errors import RuleError
from tpledger.ledger.genesis import ACTIVE, PARTICIPANT_ROLES, QUORUM, REVOKED, Policy
from tpledger.ledger.gov_participants import (
    add_key_event,
    key_fresh,
    pending_org,
    pending_participant,
    pending_size,
    register_key,
    write_leaf,
)
from tpledger.ledger.lpp import LppTable, LppTableError
from tpledger.ledger.registry import (
    ADD_ORG,
    ADDED,
    ADMIN_KEY_SET,
    EXECUTED,
    FAILED,
    GOV_POLICY_KEY,
    NO_X25519,
    OPEN,
    PUBLISH_TARIFF,
    REMOVE_ORG,
    SET_ADMIN_KEY,
    SET_POLICY,
    GovAction,
    KeyEvent,
    OrgRecord,
    ParticipantRecord,
    ProposalState,
    Registry,
    TariffRelease,
    TariffVersion,
    decode_leaf,
    gov_key_proposal,
    gov_key_slot,
    gov_key_tariff,
)
from tpledger.ledger.state import OverlayState, StateView
from tpledger.ledger.tx import GovBallot, GovPropose, LppPublish, SignedTx

REJECTED_OUTCOME = "rejected"  # FAILED: the no-ballots made the threshold unreachable


def _fail(code: str, message: str) -> RuleError:
    return RuleError(code, message)


def _admin_of(signer: object) -> OrgRecord:
    """The signer as an active organisation's admin (``apply_tx`` resolved it on the
    registry in force); an operational key may not sign governance txs."""
    if not isinstance(signer, OrgRecord) or signer.status != ACTIVE:
        raise _fail("not_authorised", "only an active governing organisation's admin key "
                                      "may sign this")
    return signer


# ---------------------------------------------------------------------------------------------
# Pending state: the registry in force plus the block's earlier governance writes


def pending_policy(view: StateView) -> Policy:
    """The policy after the writes so far (a SET_POLICY executed earlier in the block)."""
    raw = view.get_gov(GOV_POLICY_KEY)
    return view.registry().policy if raw is None else Policy.decode(raw)


def _new_leaves(view: StateView) -> list[ParticipantRecord | OrgRecord]:
    """The leaves appended by this block so far (slots from the registry in force's size)."""
    out = []
    for slot in range(view.registry().size, pending_size(view)):
        raw = view.get_gov(gov_key_slot(slot))
        if raw is None:  # pragma: no cover - the size row and the slot rows are written together
            raise RuntimeError(f"registry slot {slot} missing below the pending size")
        out.append(decode_leaf(raw))
    return out


def active_org_names(view: StateView) -> list[str]:
    """Organisations active in the pending state: those of the registry in force not removed
    since, plus those added by this block (a bounded scan: at most the block's new leaves)."""
    names = [o.name for o in view.registry().orgs()]
    names += [leaf.name for leaf in _new_leaves(view) if isinstance(leaf, OrgRecord)]
    out = []
    for name in names:
        rec = pending_org(view, name)
        if rec is not None and rec.status == ACTIVE:
            out.append(name)
    return out


_MEMBERS: weakref.WeakKeyDictionary[Registry, dict[str, tuple[str, ...]]] = (
    weakref.WeakKeyDictionary())


def _members(reg: Registry, org: str) -> tuple[str, ...]:
    """The participants ``org`` manages in ``reg``, whatever their status (an admin rotate
    reactivates a revoked one): an index built once per snapshot, and only when a REMOVE_ORG
    is checked (O(registry) once, then a dict get)."""
    index = _MEMBERS.get(reg)
    if index is None:
        groups: dict[str, list[str]] = {}
        for leaf in reg.leaves():
            if isinstance(leaf, ParticipantRecord):
                groups.setdefault(leaf.gov_org, []).append(leaf.org)
        index = _MEMBERS[reg] = {name: tuple(orgs) for name, orgs in groups.items()}
    return index.get(org, ())


def _has_members(view: StateView, org: str) -> bool:
    """Whether ``org`` still manages an active or suspended participant (pending state)."""
    for p in _members(view.registry(), org):
        rec = pending_participant(view, p)
        if rec is not None and rec.status != REVOKED and rec.gov_org == org:
            return True
    return any(isinstance(leaf, ParticipantRecord) and leaf.gov_org == org
               and leaf.status != REVOKED for leaf in _new_leaves(view))


def latest_tariff(view: StateView) -> tuple[int, int]:
    """(version, effective day) of the latest tariff version in the pending state."""
    reg = view.registry()
    versions = reg.tariff_versions()
    version, day = versions[-1] if versions else (1, pending_policy(view).lpp_v1_effective_day)
    while True:  # versions published earlier in this block: at most a few rows
        raw = view.get_gov(gov_key_tariff(version + 1))
        if raw is None:
            return version, day
        rel = TariffVersion.decode(raw).release
        version, day = rel.version, rel.effective_day


# ---------------------------------------------------------------------------------------------
# Tariff releases


def release_table(rel: TariffRelease) -> LppTable:
    """The table of a release's rows; ``bad_tariff`` for a bad row or a repeated code."""
    try:
        return rel.table()
    except LppTableError as exc:
        raise _fail("bad_tariff", f"tariff version {rel.version}: {exc}") from None


def check_release(view: StateView, rel: TariffRelease) -> None:
    """Raise unless ``rel`` may become the next tariff version on the pending state."""
    version, day = latest_tariff(view)
    if rel.version != version + 1:
        raise _fail("bad_tariff_version", f"the next tariff version is {version + 1}, "
                                          f"not {rel.version}")
    if rel.effective_day <= day:
        raise _fail("bad_tariff_version", f"version {rel.version} must take effect after day "
                                          f"{day} (version {version}), not on day "
                                          f"{rel.effective_day}")
    if release_table(rel).digest() != rel.table_digest:
        raise _fail("bad_tariff_digest", f"tariff version {rel.version}: the digest is not "
                                         "the digest of its rows")


def _write_release(view: StateView, rel: TariffRelease, height: int, tx_id: bytes) -> None:
    view.put_gov(gov_key_tariff(rel.version), TariffVersion(rel, height, tx_id).encode())


def apply_lpp_publish(view: StateView, ctx: Any, stx: SignedTx, body: LppPublish,
                      tx_id: bytes, signer: object, height: int, time_ms: int) -> None:
    """A tariff version published by the policy's publisher alone."""
    org = _admin_of(signer)
    publisher = view.registry().policy.tariff_publisher
    if publisher != org.name:
        who = "by a quorum proposal" if publisher == QUORUM else f"by {publisher}'s admin"
        raise _fail("not_authorised", f"tariff versions are published {who}")
    check_release(view, body.release)
    _write_release(view, body.release, height, tx_id)
    view.mark_tx(tx_id)


# ---------------------------------------------------------------------------------------------
# Quorum actions


def _bad(index: int, why: str) -> RuleError:
    return _fail("bad_action", f"action {index}: {why}")


def _only(action: GovAction, index: int, *fields: str) -> None:
    """An action carries the fields of its op and nothing else (one meaning per bytes)."""
    given = {"org": action.org != "", "admin_ed25519": action.admin_ed25519 is not None,
             "roles": bool(action.roles), "policy": action.policy is not None,
             "tariff": action.tariff is not None}
    extra = sorted(name for name, present in given.items() if present and name not in fields)
    missing = sorted(name for name in fields if not given[name])
    if extra or missing:
        raise _bad(index, f"op {action.op} needs {', '.join(fields)}"
                          + (f"; has {', '.join(extra)}" if extra else ""))


def _active_org(view: StateView, name: str, index: int) -> OrgRecord:
    rec = pending_org(view, name)
    if rec is None or rec.status != ACTIVE:
        raise _bad(index, f"{name} is not an active governing organisation")
    return rec


def _fresh_key(view: StateView, ctx: Any, key: bytes | None, index: int) -> None:
    """An admin key never registered in the registry, and no validator's (as for a
    participant's new key: a key names one slot forever)."""
    if key is None or not key_fresh(view, ctx, key):
        raise _bad(index, "the admin key is already in use")


def check_action(view: StateView, ctx: Any, action: GovAction, index: int = 0) -> None:
    """Raise (``bad_action``, or a tariff code) unless ``action`` is valid on ``view``."""
    op = action.op
    if op == ADD_ORG:
        _only(action, index, "org", "admin_ed25519", "roles")
        if pending_org(view, action.org) is not None or \
                pending_participant(view, action.org) is not None:
            raise _bad(index, f"the name {action.org} is already used")
        _fresh_key(view, ctx, action.admin_ed25519, index)
        if len(set(action.roles)) != len(action.roles) or \
                any(r not in PARTICIPANT_ROLES for r in action.roles):
            raise _bad(index, f"roles must be distinct, among {', '.join(PARTICIPANT_ROLES)}")
    elif op == REMOVE_ORG:
        _only(action, index, "org")
        _active_org(view, action.org, index)
        if _has_members(view, action.org):
            raise _bad(index, f"{action.org} still manages active or suspended participants")
        policy = pending_policy(view)
        if len(active_org_names(view)) - 1 < policy.threshold:
            raise _bad(index, "the quorum would become unreachable")
        if policy.tariff_publisher == action.org:
            raise _bad(index, f"{action.org} publishes the tariffs: change the policy first")
    elif op == SET_ADMIN_KEY:
        _only(action, index, "org", "admin_ed25519")
        _active_org(view, action.org, index)
        _fresh_key(view, ctx, action.admin_ed25519, index)
    elif op == SET_POLICY:
        _only(action, index, "policy")
        assert action.policy is not None
        _check_policy(view, action.policy, index)
    else:  # PUBLISH_TARIFF (the record's range allows no other op)
        _only(action, index, "tariff")
        assert action.tariff is not None
        check_release(view, action.tariff)


def _check_policy(view: StateView, new: Policy, index: int) -> None:
    active = active_org_names(view)
    if new.threshold > len(active):
        raise _bad(index, f"threshold {new.threshold} exceeds the {len(active)} active orgs")
    if new.tariff_publisher != QUORUM and new.tariff_publisher not in active:
        raise _bad(index, f"tariff publisher {new.tariff_publisher} is not an active org")
    if new.lpp_v1_effective_day != pending_policy(view).lpp_v1_effective_day:
        raise _bad(index, "the effective day of tariff version 1 cannot change")


def _apply_action(view: StateView, action: GovAction, height: int, tx_id: bytes,
                  signer: bytes) -> None:
    op = action.op
    if op in (ADD_ORG, SET_ADMIN_KEY):
        assert action.admin_ed25519 is not None
        key = action.admin_ed25519
        old = pending_org(view, action.org)
        if old is None:
            rec = OrgRecord(action.org, key, action.roles, ACTIVE, height, pending_size(view))
        else:
            rec = replace(old, admin_ed25519=key, since_height=height)
        write_leaf(view, rec)
        register_key(view, key, rec.slot)
        event = ADDED if old is None else ADMIN_KEY_SET
        add_key_event(view, KeyEvent(action.org, event, height, key, NO_X25519, signer, tx_id))
    elif op == REMOVE_ORG:
        old = pending_org(view, action.org)
        assert old is not None
        write_leaf(view, replace(old, status=REVOKED, since_height=height))
    elif op == SET_POLICY:
        assert action.policy is not None
        view.put_gov(GOV_POLICY_KEY, action.policy.encode())
    else:
        assert action.tariff is not None
        _write_release(view, action.tariff, height, tx_id)


def _run_actions(view: StateView, ctx: Any, actions: Sequence[GovAction], height: int,
                 tx_id: bytes, signer: bytes) -> None:
    for i, action in enumerate(actions):
        check_action(view, ctx, action, i)
        _apply_action(view, action, height, tx_id, signer)


def execute_actions(view: StateView, ctx: Any, actions: Sequence[GovAction], height: int,
                    tx_id: bytes, signer: bytes) -> str | None:
    """Check and apply ``actions`` in order, each on the state the earlier ones leave, all
    or nothing: returns None when all were applied to ``view``, else the code of the first
    failing one (``view`` untouched). ``tx_id``/``signer``: the tx that executes them."""
    scratch = OverlayState(view)
    try:
        _run_actions(scratch, ctx, actions, height, tx_id, signer)
    except RuleError as exc:
        return exc.code
    scratch.commit_to(view)
    return None


# ---------------------------------------------------------------------------------------------
# Proposals and ballots


def _quorum_reached(active: set[str], threshold: int, prop: ProposalState) -> bool:
    """Whether the yes-ballots of organisations ``active`` in the registry in force for the
    block reach its policy's threshold."""
    return sum(1 for name in prop.yes if name in active) >= threshold


def _settle(view: StateView, ctx: Any, prop: ProposalState, height: int, tx_id: bytes,
            signer: bytes) -> ProposalState:
    """Execute ``prop`` if its yes-ballots reach the threshold, or fail it if its
    no-ballots make that impossible; else leave it open."""
    reg = view.registry()
    active = {o.name for o in reg.orgs()}
    if _quorum_reached(active, reg.policy.threshold, prop):
        code = execute_actions(view, ctx, prop.actions, height, tx_id, signer)
        return replace(prop, status=EXECUTED if code is None else FAILED,
                       outcome=code or "", closed_height=height)
    if sum(1 for name in prop.no if name in active) > len(active) - reg.policy.threshold:
        return replace(prop, status=FAILED, outcome=REJECTED_OUTCOME, closed_height=height)
    return prop


def apply_propose(view: StateView, ctx: Any, stx: SignedTx, body: GovPropose, tx_id: bytes,
                  signer: object, height: int, time_ms: int) -> None:
    """A proposal: checked as a dry run of its actions on the pending state; the proposer's
    organisation is its first yes (so a threshold of 1 executes it at once)."""
    org = _admin_of(signer)
    policy = view.registry().policy
    if body.expires_at_ms <= time_ms:
        raise _fail("proposal_expired", "the proposal has already expired")
    if body.expires_at_ms > time_ms + policy.max_proposal_ttl_ms:
        raise _fail("bad_proposal", f"a proposal expires within "
                                    f"{policy.max_proposal_ttl_ms} ms of its block")
    for i, action in enumerate(body.actions):
        if action.op == PUBLISH_TARIFF and policy.tariff_publisher != QUORUM:
            raise _fail("not_authorised", f"action {i}: tariff versions are published by "
                                          f"{policy.tariff_publisher}'s admin alone")
    # a dry run on a throwaway overlay: every action valid in order, nothing kept
    _run_actions(OverlayState(view), ctx, body.actions, height, tx_id, stx.signer)
    prop = ProposalState(org.name, body.actions, height, body.expires_at_ms, (org.name,), (),
                         OPEN, "", 0)
    prop = _settle(view, ctx, prop, height, tx_id, stx.signer)
    view.put_gov(gov_key_proposal(tx_id), prop.encode())
    view.mark_tx(tx_id)


def _check_open(prop: ProposalState, time_ms: int, pid: bytes) -> None:
    """A ballot counts only on an open proposal before its expiry (so an expired proposal
    can never execute: its state stays as it was)."""
    if prop.status != OPEN:
        raise _fail("proposal_closed", f"proposal {pid.hex()[:16]} is closed")
    if time_ms >= prop.expires_at_ms:
        raise _fail("proposal_expired", f"proposal {pid.hex()[:16]} has expired")


def _check_not_voted(prop: ProposalState, name: str) -> None:
    """One ballot per organisation and proposal, either way (the proposer's is its yes)."""
    if name in prop.yes or name in prop.no:
        raise _fail("ballot_replayed", f"{name} has already voted on this proposal")


def apply_ballot(view: StateView, ctx: Any, stx: SignedTx, body: GovBallot, tx_id: bytes,
                 signer: object, height: int, time_ms: int) -> None:
    """One organisation's yes or no on an open proposal; may execute or fail it."""
    org = _admin_of(signer)
    raw = view.get_gov(gov_key_proposal(body.proposal_id))
    if raw is None:
        raise _fail("unknown_proposal", f"no proposal {body.proposal_id.hex()[:16]}")
    prop = ProposalState.decode(raw)
    _check_open(prop, time_ms, body.proposal_id)
    _check_not_voted(prop, org.name)
    if body.approve:
        prop = replace(prop, yes=tuple(sorted((*prop.yes, org.name))))
    else:
        prop = replace(prop, no=tuple(sorted((*prop.no, org.name))))
    prop = _settle(view, ctx, prop, height, tx_id, stx.signer)
    view.put_gov(gov_key_proposal(body.proposal_id), prop.encode())
    view.mark_tx(tx_id)


__all__ = [
    "REJECTED_OUTCOME",
    "active_org_names",
    "apply_ballot",
    "apply_lpp_publish",
    "apply_propose",
    "check_action",
    "check_release",
    "execute_actions",
    "latest_tariff",
    "pending_policy",
    "release_table",
]

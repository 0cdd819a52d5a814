"""Quorum governance and tariff versions (ledger/gov_proposals.py): one test per code, the
execution semantics (all or nothing, from the next block), and tariff versions judging claims
by their dispensing day."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import pytest

from tests.ledger.helpers import luhn_complete
from tpledger.ledger import gov_proposals
from tpledger.ledger.errors import EncodingError, RuleError
from tpledger.ledger.genesis import (
    ACTIVE,
    DAY_MS,
    DEFAULT_PARAMS,
    REVOKED,
    Genesis,
    GovOrg,
    Identifiers,
    Participant,
    Policy,
    Validator,
)
from tpledger.ledger.keys import KeyFile, Signer
from tpledger.ledger.lpp import LppTable, LppTableError
from tpledger.ledger.registry import (
    ADD_ORG,
    EXECUTED,
    FAILED,
    OPEN,
    PUBLISH_TARIFF,
    REMOVE_ORG,
    SET_ADMIN_KEY,
    SET_POLICY,
    GovAction,
    LppRow,
    ProposalState,
    Registry,
    TariffRelease,
    TariffVersion,
    gov_key_proposal,
    gov_key_tariff,
)
from tpledger.ledger.rules import RULE_CODES, MemoryState, OverlayState, RulesContext, apply_tx
from tpledger.ledger.tx import (
    REVOKE,
    SUSPEND,
    Claim,
    GovBallot,
    GovPropose,
    LppLine,
    LppPublish,
    ParticipantChange,
    SignedTx,
    TxBody,
    sign_tx,
)

CHAIN = "tp-gov"
LPP = LppTable.default()
FRAME = "2210546"  # child frame, PLV 3049 cents in version 1
V1_DAY = 19_000  # version 1 in force from this day
T0_MS = (V1_DAY + 100) * DAY_MS  # the first block's time
TTL_MS = 7 * DAY_MS


OPT_IDS = Identifiers(rpps=luhn_complete("1000000000"), siret=luhn_complete("7328293200007"))
INS_IDS = Identifiers(amc="12345678")
ADMINS = {name: Signer.generate() for name in ("federation", "cnam", "insurers", "auditors")}
ROLES = {"federation": ("optician",), "cnam": ("cnam",), "insurers": ("insurer",),
         "auditors": ("auditor",)}
KEYS = {"opt-1": KeyFile.generate("opt-1", "optician"),
        "ins-1": KeyFile.generate("ins-1", "insurer"),
        "cnam-1": KeyFile.generate("cnam-1", "cnam")}
GOV_OF = {"opt-1": "federation", "ins-1": "insurers", "cnam-1": "cnam"}
IDS_OF = {"opt-1": OPT_IDS, "ins-1": INS_IDS, "cnam-1": Identifiers()}
POLICY = Policy(threshold=2, tariff_publisher="cnam", max_claim_age_days=365,
                max_proposal_ttl_ms=TTL_MS, lpp_v1_effective_day=V1_DAY)


def gov_genesis(chain_id: str, time_ms: int, participants: tuple[Participant, ...],
                gov_orgs: tuple[GovOrg, ...], policy: Policy,
                validator: bytes | None = None) -> Genesis:
    """A version-2 genesis with one validator, the seed LPP table and these governing orgs."""
    return Genesis(
        chain_id=chain_id,
        genesis_time_ms=time_ms,
        validators=(Validator("v0", "val-org",
                              Signer.generate().public if validator is None else validator),),
        participants=participants,
        lpp_table_digest=LPP.digest(),
        params=DEFAULT_PARAMS,
        gov_orgs=gov_orgs,
        policy=policy,
    ).validated()


def genesis(policy: Policy = POLICY) -> Genesis:
    return gov_genesis(
        CHAIN, T0_MS - 1000,
        tuple(Participant(k.org, k.role, k.signer.public, k.box.public, GOV_OF[k.org],
                          IDS_OF[k.org]) for k in KEYS.values()),
        tuple(GovOrg(n, s.public, ROLES[n]) for n, s in ADMINS.items()), policy)


class Chain:
    """A MemoryState chain: each ``block`` applies its txs on the registry in force (the one
    after the previous block) and installs the next registry at its end."""

    def __init__(self, policy: Policy = POLICY, genesis_: Genesis | None = None) -> None:
        self.genesis = genesis(policy) if genesis_ is None else genesis_
        self.ctx = RulesContext(self.genesis.chain_id, self.genesis, LPP)
        self.state = MemoryState.of_genesis(self.genesis)
        self.height = 0
        self.time_ms = self.genesis.genesis_time_ms

    @property
    def reg(self) -> Registry:
        return self.state.registry()

    def open_block(self, dt_ms: int = 1000) -> OverlayState:
        """Start the next block, ``dt_ms`` after the previous one; txs go to the overlay."""
        self.height += 1
        self.time_ms += dt_ms
        return OverlayState(self.state)

    def apply_in_block(self, overlay: OverlayState, t: SignedTx) -> str | None:
        """Apply one tx of the open block: its refusal code, or None (accepted)."""
        one = OverlayState(overlay)  # a refused tx leaves nothing (as the mempool does)
        try:
            apply_tx(one, self.ctx, t, self.height, self.time_ms)
        except RuleError as exc:
            assert exc.code in RULE_CODES, exc.code
            return exc.code
        one.commit_to()
        return None

    def close_block(self, overlay: OverlayState) -> None:
        """Commit the block and install the registry in force for the next one."""
        writes = overlay.gov_writes()
        overlay.commit_to()
        self.state.end_block(writes)

    def block(self, txs: Sequence[SignedTx], dt_ms: int = 1000) -> list[str | None]:
        """Apply ``txs`` as the next block; returns each tx's refusal code (None: accepted)."""
        overlay = self.open_block(dt_ms)
        codes = [self.apply_in_block(overlay, t) for t in txs]
        self.close_block(overlay)
        return codes

    def one(self, t: SignedTx, dt_ms: int = 1000) -> str | None:
        return self.block([t], dt_ms)[0]

    def proposal(self, pid: bytes) -> ProposalState:
        raw = self.state.get_gov(gov_key_proposal(pid))
        assert raw is not None
        return ProposalState.decode(raw)


def admin_tx(org: str, body: TxBody) -> SignedTx:
    return sign_tx(CHAIN, ADMINS[org], body)


def propose(org: str, *actions: GovAction, expires_at_ms: int | None = None) -> SignedTx:
    expires = (T0_MS + TTL_MS // 2) if expires_at_ms is None else expires_at_ms
    return admin_tx(org, GovPropose(tuple(actions), expires, os.urandom(16)))


def ballot(org: str, pid: bytes, approve: bool = True) -> SignedTx:
    return admin_tx(org, GovBallot(pid, approve))


def add_org(name: str, key: bytes | None = None, roles: tuple[str, ...] = ("insurer",)
            ) -> GovAction:
    return GovAction(ADD_ORG, name, Signer.generate().public if key is None else key, roles,
                     None, None)


def remove_org(name: str) -> GovAction:
    return GovAction(REMOVE_ORG, name, None, (), None, None)


def set_policy(policy: Policy) -> GovAction:
    return GovAction(SET_POLICY, "", None, (), policy, None)


def release(version: int, effective_day: int, frame_plv: int = 2500,
            digest: bytes | None = None) -> TariffRelease:
    """The seed table with the child frame's PLV changed, as version ``version``."""
    entries = [replace(e, max_price_cents=frame_plv) if e.code == FRAME else e for e in LPP]
    table = LppTable(entries)
    return TariffRelease(version, effective_day, table.digest() if digest is None else digest,
                         tuple(LppRow.of(e) for e in table))


def claim_tx(day: int, amount_cents: int = 2800, nonce: int = 0) -> SignedTx:
    """opt-1's claim for one child frame dispensed on UTC day ``day``."""
    body = Claim("opt-1", "ins-1", (LppLine(FRAME, 1, amount_cents),), 1000, amount_cents - 1000,
                 b"\x01" * 32, (), day * DAY_MS + 3_600_000, nonce.to_bytes(16, "big"),
                 f"INV-{day}-{nonce}")
    return sign_tx(CHAIN, KEYS["opt-1"].signer, body)


@pytest.fixture()
def chain() -> Chain:
    return Chain()


# -- proposals and the quorum -------------------------------------------------------------------


def test_a_proposal_short_of_the_quorum_changes_nothing(chain: Chain) -> None:
    p = propose("federation", add_org("mutuelle-new"))
    root = chain.reg.root
    assert chain.one(p) is None
    assert chain.proposal(p.tx_id()).status == OPEN
    assert chain.proposal(p.tx_id()).yes == ("federation",)
    assert chain.reg.org("mutuelle-new") is None and chain.reg.root == root
    # a no vote does not execute it either
    assert chain.one(ballot("auditors", p.tx_id(), approve=False)) is None
    assert chain.reg.org("mutuelle-new") is None and chain.proposal(p.tx_id()).status == OPEN
    # the second yes reaches the threshold (2): executed in that block, in force at the next
    assert chain.block([ballot("cnam", p.tx_id())]) == [None]
    state = chain.proposal(p.tx_id())
    assert (state.status, state.outcome, state.closed_height) == (EXECUTED, "", chain.height)
    org = chain.reg.org("mutuelle-new")
    assert org is not None and org.status == ACTIVE and chain.reg.root != root


def test_a_proposal_executes_at_the_block_of_its_quorum_and_acts_from_the_next() -> None:
    chain = Chain()
    key = Signer.generate()
    p = propose("federation", add_org("mutuelle-new", key.public))
    chain.one(p)
    # the ballot that executes it and the new org's first proposal in the same block: the
    # new admin is not in force yet
    second = sign_tx(CHAIN, key, GovPropose((add_org("other"),), T0_MS + DAY_MS, b"\0" * 16))
    assert chain.block([ballot("cnam", p.tx_id()), second]) == [None, "unknown_signer"]
    assert chain.one(second) is None  # the next block: in force


def test_threshold_one_executes_at_once() -> None:
    chain = Chain(replace(POLICY, threshold=1))
    p = propose("federation", add_org("mutuelle-new"))
    assert chain.one(p) is None
    assert chain.proposal(p.tx_id()).status == EXECUTED
    assert chain.reg.org("mutuelle-new") is not None


def test_proposal_expired(chain: Chain) -> None:
    p = propose("federation", add_org("mutuelle-new"), expires_at_ms=chain.time_ms + 5000)
    assert chain.one(p) is None
    before = dict(chain.state.gov)
    # the ballot comes when the block time has reached the expiry: refused, nothing written
    assert chain.one(ballot("cnam", p.tx_id()), dt_ms=5000) == "proposal_expired"
    assert chain.state.gov == before
    assert chain.proposal(p.tx_id()).status == OPEN and chain.reg.org("mutuelle-new") is None
    # and it stays unexecutable: later ballots are refused the same way
    assert chain.one(ballot("insurers", p.tx_id())) == "proposal_expired"
    # a proposal already expired at its block is refused
    late = propose("federation", add_org("x"), expires_at_ms=chain.time_ms + 1000)
    assert chain.one(late) == "proposal_expired"


def test_without_the_expiry_check_an_expired_proposal_executes(
        chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Broken variant of ``proposal_expired``: the late ballot executes the proposal."""
    p = propose("federation", add_org("mutuelle-new"), expires_at_ms=chain.time_ms + 5000)
    chain.one(p)
    monkeypatch.setattr(gov_proposals, "_check_open", lambda prop, time_ms, pid: None)
    assert chain.one(ballot("cnam", p.tx_id()), dt_ms=5000) is None
    assert chain.reg.org("mutuelle-new") is not None


def test_bad_proposal(chain: Chain) -> None:
    too_long = propose("federation", add_org("x"), expires_at_ms=chain.time_ms + 1000 + TTL_MS
                       + 1)
    assert chain.one(too_long) == "bad_proposal"
    just = propose("federation", add_org("x"), expires_at_ms=chain.time_ms + 1000 + TTL_MS)
    assert chain.one(just) is None


def test_ballot_replayed(chain: Chain) -> None:
    p = propose("federation", add_org("mutuelle-new"))
    chain.one(p)
    assert chain.one(ballot("federation", p.tx_id())) == "ballot_replayed"  # the proposer's yes
    assert chain.one(ballot("auditors", p.tx_id(), approve=False)) is None
    assert chain.one(ballot("auditors", p.tx_id(), approve=True)) == "ballot_replayed"
    assert chain.proposal(p.tx_id()).no == ("auditors",)
    assert chain.reg.org("mutuelle-new") is None


def test_a_ballot_cast_twice_without_the_check_lets_one_org_decide_alone(
        chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Broken variant of ``ballot_replayed``: without the check, the proposer's second yes
    reaches the threshold of 2 on its own."""
    monkeypatch.setattr(gov_proposals, "_check_not_voted", lambda prop, name: None)
    p = propose("federation", add_org("mutuelle-new"))
    chain.one(p)
    assert chain.one(ballot("federation", p.tx_id())) is None
    assert chain.proposal(p.tx_id()).status == EXECUTED
    assert chain.reg.org("mutuelle-new") is not None


def test_duplicate_tx_a_replayed_ballot(chain: Chain) -> None:
    p = propose("federation", add_org("mutuelle-new"))
    chain.one(p)
    no = ballot("auditors", p.tx_id(), approve=False)
    assert chain.one(no) is None
    assert chain.one(no) == "duplicate_tx"  # the same signed bytes again
    assert chain.block([propose("federation", add_org("y"))] * 2)[1] == "duplicate_tx"


def test_not_authorised_a_non_admin_cannot_vote_or_propose(chain: Chain) -> None:
    p = propose("federation", add_org("mutuelle-new"))
    chain.one(p)
    for org in KEYS:  # every operational key: refused, whatever its role
        assert chain.one(sign_tx(CHAIN, KEYS[org].signer,
                                 GovBallot(p.tx_id(), True))) == "not_authorised"
        assert chain.one(sign_tx(CHAIN, KEYS[org].signer, GovPropose(
            (add_org("z"),), chain.time_ms + DAY_MS, b"\0" * 16))) == "not_authorised"
    assert chain.one(sign_tx(CHAIN, Signer.generate(), GovBallot(p.tx_id(), True))
                     ) == "unknown_signer"
    assert chain.proposal(p.tx_id()).yes == ("federation",)


def test_a_removed_orgs_admin_cannot_vote(chain: Chain) -> None:
    rm = propose("federation", remove_org("auditors"))
    chain.one(rm)
    p = propose("federation", add_org("mutuelle-new"))
    # the auditors' last act: in the block that removes them, they still count
    assert chain.block([ballot("cnam", rm.tx_id()), p]) == [None, None]
    assert chain.proposal(rm.tx_id()).status == EXECUTED
    removed = chain.reg.org("auditors")
    assert removed is not None and removed.status == REVOKED
    assert chain.one(ballot("auditors", p.tx_id())) == "revoked_signer"
    assert chain.one(propose("auditors", add_org("w"))) == "revoked_signer"
    assert chain.proposal(p.tx_id()).status == OPEN


def test_bad_action_remove_org_with_active_participants(chain: Chain) -> None:
    # refused at the proposal (a dry run of its actions on the pending state)
    assert chain.one(propose("cnam", remove_org("insurers"))) == "bad_action"
    # a suspended participant is still managed: still refused
    chain.one(admin_tx("insurers", ParticipantChange("ins-1", SUSPEND, None, None, "audit",
                                                     b"\1" * 16)))
    assert chain.reg.participant("ins-1").status != ACTIVE  # type: ignore[union-attr]
    assert chain.one(propose("cnam", remove_org("insurers"))) == "bad_action"
    # once its participants are revoked, the quorum may remove it
    chain.one(admin_tx("insurers", ParticipantChange("ins-1", REVOKE, None, None, "closed",
                                                     b"\2" * 16)))
    p = propose("cnam", remove_org("insurers"))
    assert chain.block([p, ballot("federation", p.tx_id())]) == [None, None]
    assert chain.proposal(p.tx_id()).status == EXECUTED


def test_bad_action_checks(chain: Chain) -> None:
    fed_key = ADMINS["federation"].public
    opt_key = KEYS["opt-1"].signer.public
    bad = [
        add_org("cnam"),  # name of an org
        add_org("opt-1"),  # name of a participant
        add_org("new", fed_key),  # an admin key in use
        add_org("new", opt_key),  # an operational key in use
        add_org("new", roles=("optician", "optician")),
        add_org("new", roles=("pharmacist",)),
        add_org("new", roles=()),
        GovAction(ADD_ORG, "new", Signer.generate().public, ("insurer",), POLICY, None),
        remove_org("nobody"),
        GovAction(SET_ADMIN_KEY, "cnam", fed_key, (), None, None),
        GovAction(SET_ADMIN_KEY, "nobody", Signer.generate().public, (), None, None),
        set_policy(replace(POLICY, threshold=5)),  # more than the 4 orgs
        set_policy(replace(POLICY, tariff_publisher="nobody")),
        set_policy(replace(POLICY, lpp_v1_effective_day=V1_DAY - 1)),
        GovAction(SET_POLICY, "cnam", None, (), POLICY, None),  # a field of another op
    ]
    for action in bad:
        assert chain.one(propose("federation", action)) == "bad_action", action
    # actions are checked in order, each on the state the earlier ones leave
    key = Signer.generate().public
    assert chain.one(propose("federation", add_org("new", key), add_org("new2", key))
                     ) == "bad_action"
    assert chain.one(propose("federation", add_org("new"), remove_org("new"))) is None


def test_bad_action_the_quorum_stays_reachable() -> None:
    chain = Chain(replace(POLICY, threshold=4))
    for name in ("auditors",):
        assert chain.one(propose("federation", remove_org(name))) == "bad_action"
    chain2 = Chain(replace(POLICY, threshold=3))
    p = propose("federation", remove_org("auditors"))
    assert chain2.block([p, ballot("cnam", p.tx_id()), ballot("insurers", p.tx_id())]
                        ) == [None, None, None]
    assert chain2.proposal(p.tx_id()).status == EXECUTED
    # 3 active orgs left with a threshold of 3: removing none of them is possible any more
    assert chain2.one(propose("federation", set_policy(replace(POLICY, threshold=4)))
                      ) == "bad_action"


def test_bad_action_the_tariff_publisher_is_not_removed() -> None:
    chain = Chain(replace(POLICY, tariff_publisher="auditors"))  # an org without members
    assert chain.one(propose("federation", remove_org("auditors"))) == "bad_action"
    p = propose("federation", set_policy(POLICY), remove_org("auditors"))  # publisher first
    assert chain.block([p, ballot("cnam", p.tx_id())]) == [None, None]
    assert chain.proposal(p.tx_id()).status == EXECUTED


def test_execution_is_all_or_nothing_and_failed_records_the_code(chain: Chain) -> None:
    key = Signer.generate().public
    p1 = propose("federation", add_org("first", key))
    p2 = propose("federation", add_org("second"), add_org("third", key))  # valid when proposed
    chain.block([p1, p2])
    assert chain.block([ballot("cnam", p1.tx_id()), ballot("cnam", p2.tx_id())]) == [None, None]
    state = chain.proposal(p2.tx_id())
    assert (state.status, state.outcome) == (FAILED, "bad_action")
    assert chain.reg.org("first") is not None
    assert chain.reg.org("second") is None and chain.reg.org("third") is None  # nothing of p2


def test_rejected_by_no_votes(chain: Chain) -> None:
    p = propose("federation", add_org("mutuelle-new"))
    chain.one(p)
    assert chain.one(ballot("cnam", p.tx_id(), approve=False)) is None
    assert chain.proposal(p.tx_id()).status == OPEN  # 1 no of 4, threshold 2: still possible
    assert chain.one(ballot("auditors", p.tx_id(), approve=False)) is None
    assert chain.proposal(p.tx_id()).status == OPEN  # 2 no: the other 2 can still reach 2
    assert chain.one(ballot("insurers", p.tx_id(), approve=False)) is None
    state = chain.proposal(p.tx_id())
    assert (state.status, state.outcome) == (FAILED, gov_proposals.REJECTED_OUTCOME)


def test_unknown_proposal_and_proposal_closed(chain: Chain) -> None:
    assert chain.one(ballot("cnam", b"\x09" * 32)) == "unknown_proposal"
    p = propose("federation", add_org("mutuelle-new"))
    chain.block([p, ballot("cnam", p.tx_id())])
    assert chain.proposal(p.tx_id()).status == EXECUTED
    assert chain.one(ballot("insurers", p.tx_id())) == "proposal_closed"


def test_set_admin_key_replaces_the_admin_from_the_next_block(chain: Chain) -> None:
    new = Signer.generate()
    p = propose("federation", GovAction(SET_ADMIN_KEY, "cnam", new.public, (), None, None))
    chain.block([p, ballot("insurers", p.tx_id())])
    assert chain.proposal(p.tx_id()).status == EXECUTED
    q = propose("federation", add_org("mutuelle-new"))
    chain.one(q)
    assert chain.one(ballot("cnam", q.tx_id())) == "revoked_signer"  # the replaced key
    assert chain.one(sign_tx(CHAIN, new, GovBallot(q.tx_id(), True))) is None
    assert chain.proposal(q.tx_id()).status == EXECUTED


# -- tariff versions ----------------------------------------------------------------------------


def test_claims_before_and_after_the_effective_day_are_judged_by_the_old_and_new_table(
        chain: Chain) -> None:
    d = V1_DAY + 90
    # version 2 lowers the child frame's PLV from 3049 to 2500 cents from day D
    assert chain.one(admin_tx("cnam", LppPublish(release(2, d)))) is None
    assert chain.reg.tariff_at(d, LPP) is not None
    assert chain.block([claim_tx(d - 1, 2800, 1), claim_tx(d, 2800, 2), claim_tx(d, 2500, 3)]
                       ) == [None, "price_above_limit", None]
    row = chain.state.get_gov(gov_key_tariff(2))
    assert row is not None and TariffVersion.decode(row).published_height == 1


def test_a_published_version_judges_claims_from_the_next_block(chain: Chain) -> None:
    d = V1_DAY + 90
    assert chain.block([admin_tx("cnam", LppPublish(release(2, d))), claim_tx(d, 2800)]
                       ) == [None, None]  # the version is not in force in its own block
    assert chain.one(claim_tx(d, 2800, 1)) == "price_above_limit"


def test_tariff_not_in_force(chain: Chain) -> None:
    assert chain.one(claim_tx(V1_DAY - 1)) == "tariff_not_in_force"
    assert chain.one(claim_tx(V1_DAY)) is None


def test_claim_too_old() -> None:
    chain = Chain(replace(POLICY, max_claim_age_days=30))
    today = chain.time_ms // DAY_MS
    assert chain.one(claim_tx(today - 31)) == "claim_too_old"
    assert chain.one(claim_tx(today - 29)) is None


def test_bad_tariff_version(chain: Chain) -> None:
    assert chain.one(admin_tx("cnam", LppPublish(release(3, V1_DAY + 10)))
                     ) == "bad_tariff_version"
    assert chain.one(admin_tx("cnam", LppPublish(release(2, V1_DAY)))) == "bad_tariff_version"
    assert chain.one(admin_tx("cnam", LppPublish(release(2, V1_DAY + 10)))) is None
    assert chain.one(admin_tx("cnam", LppPublish(release(3, V1_DAY + 10)))
                     ) == "bad_tariff_version"  # not after version 2's day
    assert chain.one(admin_tx("cnam", LppPublish(release(3, V1_DAY + 11)))) is None
    assert [v for v, _ in chain.reg.tariff_versions()] == [2, 3]


def test_tariff_at_picks_the_version_in_force_on_the_day(chain: Chain) -> None:
    days = {2: V1_DAY + 10, 3: V1_DAY + 20, 4: V1_DAY + 21}
    for version, day in days.items():
        assert chain.one(admin_tx("cnam", LppPublish(release(version, day, 2000 + version)))
                         ) is None
    expect = {V1_DAY - 1: None, V1_DAY: 1, V1_DAY + 9: 1, V1_DAY + 10: 2, V1_DAY + 19: 2,
              V1_DAY + 20: 3, V1_DAY + 21: 4, V1_DAY + 10_000: 4}
    for day, version in expect.items():
        got = chain.reg.tariff_at(day, LPP)
        assert (got and got[0]) == version, day
        if got is not None and version != 1:
            frame = got[1].get(FRAME)
            assert frame is not None and frame.max_price_cents == 2000 + version


def test_bad_tariff(chain: Chain) -> None:
    good = release(2, V1_DAY + 10)
    row = good.rows[0]
    twice = replace(good, rows=(row, *good.rows))
    bad_row = replace(good, rows=(replace(row, category="hat"), *good.rows[1:]))
    for rel in (twice, bad_row):
        assert chain.one(admin_tx("cnam", LppPublish(rel))) == "bad_tariff"


def test_bad_tariff_digest(chain: Chain) -> None:
    assert chain.one(admin_tx("cnam", LppPublish(release(2, V1_DAY + 10, digest=b"\0" * 32)))
                     ) == "bad_tariff_digest"
    other = release(2, V1_DAY + 10, frame_plv=2000)
    assert chain.one(admin_tx("cnam", LppPublish(replace(other, table_digest=release(
        2, V1_DAY + 10).table_digest)))) == "bad_tariff_digest"


def test_only_the_publisher_publishes_alone(chain: Chain) -> None:
    rel = release(2, V1_DAY + 10)
    assert chain.one(admin_tx("federation", LppPublish(rel))) == "not_authorised"
    assert chain.one(sign_tx(CHAIN, KEYS["cnam-1"].signer, LppPublish(rel))) == "not_authorised"
    # the publisher publishes alone, so a quorum tariff action is refused
    tariff = GovAction(PUBLISH_TARIFF, "", None, (), None, rel)
    assert chain.one(propose("federation", tariff)) == "not_authorised"


def test_a_quorum_publishes_when_the_policy_says_quorum(chain: Chain) -> None:
    p = propose("federation", set_policy(replace(POLICY, tariff_publisher="quorum")))
    chain.block([p, ballot("cnam", p.tx_id())])
    assert chain.reg.policy.tariff_publisher == "quorum"
    rel = release(2, V1_DAY + 10)
    assert chain.one(admin_tx("cnam", LppPublish(rel))) == "not_authorised"
    t = propose("cnam", GovAction(PUBLISH_TARIFF, "", None, (), None, rel))
    assert chain.block([t, ballot("insurers", t.tx_id())]) == [None, None]
    assert chain.reg.tariff_versions() == ((2, V1_DAY + 10),)


def test_lpp_row_round_trips() -> None:
    for entry in LPP:
        assert LppRow.of(entry).entry() == entry
        assert LppRow.from_wire(LppRow.of(entry).to_wire()) == LppRow.of(entry)
    assert LppRow(FRAME, "x", "frame", "child", "", None, 5).entry().klass is None
    for bad in ([FRAME], "row"):  # malformed rows on the wire: refused by the decoder
        with pytest.raises(EncodingError):
            LppRow.from_wire(bad)
    with pytest.raises(LppTableError, match=r"category"):
        LppRow(FRAME, "x", "hat", "child", "", None, 5).entry()

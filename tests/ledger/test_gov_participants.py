"""Participant governance (ledger/gov_participants.py) and the signer rules of the registry in
force: one test per rule code, revocation from the next block, rotation, identifiers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.ledger import helpers as h
from tpledger.ledger import gov_participants
from tpledger.ledger import registry as regmod
from tpledger.ledger.errors import RuleError
from tpledger.ledger.genesis import ACTIVE, SUSPENDED, Identifiers
from tpledger.ledger.registry import KeyEvent, gov_key_events_prefix
from tpledger.ledger.rules import RULE_CODES, OverlayState
from tpledger.ledger.state import MemoryState
from tpledger.ledger.tx import REINSTATE, REVOKE, ROTATE, SUSPEND

WORLD = h.make_world("gov-participants")


@pytest.fixture
def chain() -> h.MemoryChain:
    return h.MemoryChain(WORLD)


def refused(chain: h.MemoryChain, stx: object, code: str) -> RuleError:
    """``stx`` is refused with ``code`` and writes nothing."""
    assert code in RULE_CODES
    before = (dict(chain.state.gov), set(chain.state.tx_ids), chain.registry)
    with pytest.raises(RuleError) as ei:
        chain.block([stx])  # type: ignore[list-item]
    assert ei.value.code == code, str(ei.value)
    assert (dict(chain.state.gov), set(chain.state.tx_ids), chain.registry) == before
    return ei.value


# -- add -------------------------------------------------------------------------------------


def test_an_admin_adds_a_shop_that_signs_from_the_next_block(chain: h.MemoryChain) -> None:
    shop = WORLD.key("shop-new", "optician")
    add = h.make_add(WORLD, shop)
    claim = h.make_claim(WORLD)
    root0 = chain.registry.root
    chain.block([add])
    rec = chain.registry.signer(shop.signer.public)
    assert rec is not None and (rec.org, rec.role, rec.gov_org) == ("shop-new", "optician",
                                                                     "federation")
    assert rec.status == ACTIVE and rec.since_height == 1 and rec.slot == chain.registry.size - 1
    assert chain.registry.root != root0
    # its claim is judged like any other
    own = h.make_claim(WORLD)
    body = replace(own.parse(), optician="shop-new")  # type: ignore[type-var]
    chain.block([claim, h.sign_tx(WORLD.chain_id, shop.signer, body)])


def test_participant_add_by_a_participant_or_another_org_is_not_authorised(
        chain: h.MemoryChain) -> None:
    shop = WORLD.key("shop-x", "optician")
    refused(chain, h.make_add(WORLD, shop, admin=WORLD.opticians[0].signer), "not_authorised")
    refused(chain, h.make_add(WORLD, shop, admin=WORLD.admin("insurers")), "not_authorised")


def test_an_org_adds_only_roles_it_governs(chain: h.MemoryChain) -> None:
    shop = WORLD.key("shop-x", "optician")
    add = h.make_add(WORLD, shop, gov_org="insurers")  # signed by the insurers' admin
    refused(chain, add, "wrong_role")


def test_participant_exists(chain: h.MemoryChain) -> None:
    twin = WORLD.key("optic-a", "optician", tag="/twin")  # same id, fresh key
    refused(chain, h.make_add(WORLD, twin), "participant_exists")
    a, b = WORLD.key("shop-1", "optician"), WORLD.key("shop-1", "optician", tag="/b")
    with pytest.raises(RuleError) as ei:  # two adds of one id in one block: the pending state
        chain.block([h.make_add(WORLD, a), h.make_add(WORLD, b)])
    assert ei.value.code == "participant_exists"


@pytest.mark.parametrize("whose", ["participant", "admin", "validator", "retired"])
def test_key_in_use(chain: h.MemoryChain, whose: str) -> None:
    key = {"participant": WORLD.opticians[1].signer, "admin": WORLD.admin(2),
           "validator": WORLD.validators[0], "retired": WORLD.opticians[0].signer}[whose]
    if whose == "retired":  # rotated out: a key is never registered twice
        chain.block([h.make_change(WORLD, WORLD.admin("federation"), "optic-a", ROTATE,
                                   WORLD.key("optic-a", "optician", "/2"))])
    shop = WORLD.key("shop-k", "optician")
    refused(chain, h.make_add(WORLD, replace(shop, signer=key)), "key_in_use")


@pytest.mark.parametrize("ids", [
    Identifiers(),  # nothing
    Identifiers(rpps=h.luhn_complete("1000000123")),  # no SIRET
    Identifiers(rpps=h.luhn_complete("1000000123"), siret="73282932000075"),  # bad Luhn
    Identifiers(siret="73282932000074"),  # neither RPPS nor billing
    Identifiers(rpps="10003000005", siret="73282932000074"),  # RPPS with a bad key
    Identifiers(billing="12345678", siret="73282932000074"),  # 8-digit billing
    Identifiers(billing="123456789", siret="73282932000074", amc="88000001"),  # AMC: insurer's
])
def test_bad_identifier(chain: h.MemoryChain, ids: Identifiers) -> None:
    refused(chain, h.make_add(WORLD, WORLD.key("shop-i", "optician"), ids=ids),
            "bad_identifier")


def test_identifiers_on_real_format_numbers() -> None:
    from tpledger.ledger.genesis import check_identifiers, luhn_ok, siret_ok

    assert siret_ok("73282932000074") and not siret_ok("73282932000075")  # one digit flipped
    assert not siret_ok("7328293200007") and not siret_ok("7328293200007a")
    assert siret_ok("35600000000048")  # La Poste's head office: Luhn
    assert siret_ok("35600000049837") and not luhn_ok("35600000049837")  # La Poste: sum % 5
    assert not siret_ok("35600000049838")
    assert luhn_ok("10003000006") and not luhn_ok("10003000005")
    good = Identifiers(rpps="10003000006", siret="73282932000074")
    assert check_identifiers("optician", good) is None
    assert check_identifiers("optician", replace(good, rpps="", billing="123456789")) is None
    assert check_identifiers("insurer", Identifiers(amc="88000001")) is None
    assert check_identifiers("insurer", Identifiers(amc="8800001")) is not None  # 7 digits
    assert check_identifiers("insurer", Identifiers(amc="88000001", rpps="10003000006"))
    assert check_identifiers("cnam", Identifiers()) is None
    assert check_identifiers("cnam", Identifiers(siret="73282932000075")) is not None


def test_registry_full(chain: h.MemoryChain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gov_participants, "MAX_REGISTRY_SLOTS", chain.registry.size)
    refused(chain, h.make_add(WORLD, WORLD.key("shop-f", "optician")), "registry_full")
    monkeypatch.setattr(gov_participants, "MAX_REGISTRY_SLOTS", chain.registry.size + 1)
    chain.block([h.make_add(WORLD, WORLD.key("shop-f", "optician"))])


# -- change ----------------------------------------------------------------------------------


def test_unknown_participant(chain: h.MemoryChain) -> None:
    refused(chain, h.make_change(WORLD, WORLD.admin(0), "nobody", SUSPEND), "unknown_participant")


def test_bad_change(chain: h.MemoryChain) -> None:
    new = WORLD.key("optic-a", "optician", "/2")
    refused(chain, h.make_change(WORLD, WORLD.admin(0), "optic-a", ROTATE), "bad_change")
    refused(chain, h.make_change(WORLD, WORLD.admin(0), "optic-a", SUSPEND, new), "bad_change")


def test_bad_status_change(chain: h.MemoryChain) -> None:
    admin = WORLD.admin("federation")
    refused(chain, h.make_change(WORLD, admin, "optic-a", REINSTATE), "bad_status_change")
    chain.block([h.make_change(WORLD, admin, "optic-a", REVOKE, reason="phished")])
    refused(chain, h.make_change(WORLD, admin, "optic-a", SUSPEND), "bad_status_change")
    refused(chain, h.make_change(WORLD, admin, "optic-a", REVOKE), "bad_status_change")


def test_only_the_own_admin_changes_a_participant(chain: h.MemoryChain) -> None:
    refused(chain, h.make_change(WORLD, WORLD.admin("insurers"), "optic-a", SUSPEND),
            "not_authorised")
    refused(chain, h.make_change(WORLD, WORLD.opticians[0].signer, "optic-a", SUSPEND),
            "not_authorised")  # a participant may only rotate
    refused(chain, h.make_change(WORLD, WORLD.opticians[1].signer, "optic-a", ROTATE,
                                 WORLD.key("optic-a", "optician", "/2")),
            "not_authorised")  # ... its own keys


def test_suspend_and_reinstate(chain: h.MemoryChain) -> None:
    admin = WORLD.admin("federation")
    chain.block([h.make_change(WORLD, admin, "optic-a", SUSPEND, reason="audit")])
    refused(chain, h.make_claim(WORLD), "suspended_signer")
    assert chain.registry.participant("optic-a").status == SUSPENDED  # type: ignore[union-attr]
    chain.block([h.make_change(WORLD, admin, "optic-a", REINSTATE)])
    chain.block([h.make_claim(WORLD)])


def test_an_admin_key_cannot_sign_a_claim_nor_a_shop_key_an_admin_tx(
        chain: h.MemoryChain) -> None:
    claim = h.make_claim(WORLD).parse()
    refused(chain, h.sign_tx(WORLD.chain_id, WORLD.admin(0), claim), "wrong_role")
    shop = WORLD.key("shop-w", "optician")
    refused(chain, h.make_add(WORLD, shop, admin=WORLD.opticians[0].signer), "not_authorised")


# -- revocation and rotation -----------------------------------------------------------------


def test_revocation_takes_effect_from_the_next_block(chain: h.MemoryChain) -> None:
    """Block r revokes optic-a: its claim in block r is still accepted (the registry in force
    is the one after r-1), its claim in block r+1 is refused ``revoked_signer``."""
    revoke = h.make_change(WORLD, WORLD.admin("federation"), "optic-a", REVOKE, reason="phished")
    same_block = h.make_claim(WORLD)
    chain.block([revoke, same_block])
    assert chain.state.get_claim(same_block.tx_id()) is not None
    refused(chain, h.make_claim(WORLD), "revoked_signer")


def test_revocation_in_the_same_block_broken_variant(
        chain: h.MemoryChain, monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: an overlay whose registry applied the block's writes at once
    refuses the claim of the revoking block, so the next-block rule is what the test sees."""

    def eager(self: OverlayState) -> regmod.Registry:
        base = self.base.registry()
        state = self.base
        assert isinstance(state, MemoryState) and state.tree is not None
        tree = regmod.memory_tree()
        tree.set_many((r.slot, r.encode()) for r in base.leaves())
        return base.updated(self.gov_writes(), tree)

    monkeypatch.setattr(OverlayState, "registry", eager)
    revoke = h.make_change(WORLD, WORLD.admin("federation"), "optic-a", REVOKE)
    with pytest.raises(RuleError) as ei:
        chain.block([revoke, h.make_claim(WORLD)])
    assert ei.value.code == "revoked_signer"


def test_retired_keys_of_a_block(chain: h.MemoryChain) -> None:
    before = chain.registry
    new = WORLD.key("mutuelle-a", "insurer", "/2")
    chain.block([
        h.make_change(WORLD, WORLD.admin("federation"), "optic-a", REVOKE),
        h.make_change(WORLD, WORLD.admin("federation"), "optic-b", SUSPEND),
        h.make_change(WORLD, WORLD.insurers[0].signer, "mutuelle-a", ROTATE, new),
    ])
    after = chain.registry
    expected = {WORLD.opticians[0].signer.public, WORLD.opticians[1].signer.public,
                WORLD.insurers[0].signer.public}
    assert after.retired_since(before) == expected
    assert after.retired_since(after) == frozenset()
    assert before.retired_since(before) == frozenset()
    assert after.updated((), regmod.memory_tree()) is after  # no writes: same snapshot


def test_a_rotated_key_is_refused_and_the_new_one_signs(chain: h.MemoryChain) -> None:
    old = WORLD.insurers[0]
    new = WORLD.key("mutuelle-a", "insurer", "/2")
    claim = h.make_claim(WORLD)
    chain.block([claim])
    chain.block([h.make_change(WORLD, old.signer, "mutuelle-a", ROTATE, new)])  # by itself
    rec = chain.registry.participant("mutuelle-a")
    assert rec is not None and rec.ed25519 == new.signer.public and rec.x25519 == new.box.public
    refused(chain, h.make_decision(WORLD, claim.tx_id(), h.SHARE_AMC, 1000), "revoked_signer")
    decision = h.make_decision(WORLD, claim.tx_id(), h.SHARE_AMC, 1000)
    chain.block([h.sign_tx(WORLD.chain_id, new.signer, decision.parse())])
    events = [KeyEvent.decode(v) for k, v in sorted(chain.state.gov.items())
              if k.startswith(gov_key_events_prefix("mutuelle-a"))]
    assert [(e.op, e.height, e.ed25519) for e in events] == [
        (regmod.ROTATED, 2, new.signer.public)]


def test_a_phished_key_cannot_rotate_after_its_admin_in_the_same_block(
        chain: h.MemoryChain) -> None:
    """The admin rotates the phished key away; the thief, still in force for this block,
    tries to rotate to its own keys after it in the same block: refused."""
    thief = WORLD.key("optic-a", "optician", "/thief")
    fresh = WORLD.key("optic-a", "optician", "/fresh")
    admin_rotate = h.make_change(WORLD, WORLD.admin("federation"), "optic-a", ROTATE, fresh)
    thief_rotate = h.make_change(WORLD, WORLD.opticians[0].signer, "optic-a", ROTATE, thief)
    with pytest.raises(RuleError) as ei:
        chain.block([admin_rotate, thief_rotate])
    assert ei.value.code == "not_authorised"
    chain.block([admin_rotate])
    assert chain.registry.participant("optic-a").ed25519 == fresh.signer.public  # type: ignore


def test_an_admin_rotation_reactivates_a_revoked_participant(chain: h.MemoryChain) -> None:
    admin = WORLD.admin("federation")
    fresh = WORLD.key("optic-a", "optician", "/fresh")
    chain.block([h.make_change(WORLD, admin, "optic-a", REVOKE)])
    refused(chain, h.make_change(WORLD, WORLD.opticians[0].signer, "optic-a", ROTATE, fresh),
            "revoked_signer")
    chain.block([h.make_change(WORLD, admin, "optic-a", ROTATE, fresh)])
    assert chain.registry.signer(fresh.signer.public) is not None
    assert chain.registry.participant("optic-a").status == ACTIVE  # type: ignore[union-attr]
    assert chain.registry.refusal(WORLD.opticians[0].signer.public) == "revoked_signer"
    assert chain.registry.refusal(b"\x09" * 32) == "unknown_signer"


def test_registry_root_is_the_tree_of_its_leaves(chain: h.MemoryChain) -> None:
    from tpledger.ledger.merkle import root_of

    chain.block([h.make_add(WORLD, WORLD.key("shop-r", "optician")),
                 h.make_change(WORLD, WORLD.admin(0), "optic-b", SUSPEND)])
    reg = chain.registry
    assert reg.root == root_of([rec.encode() for rec in reg.leaves()])
    assert len(reg.leaves()) == reg.size == 3 + 5 + 1
    loaded = regmod.Registry.load(chain.state.gov.items(), chain.state.tree)  # type: ignore
    assert (loaded.root, loaded.size, loaded.leaves()) == (reg.root, reg.size, reg.leaves())
    # the incremental indexes of ``updated`` are those of a full build
    keys = [*(regmod.leaf_key(r) for r in reg.leaves()), WORLD.opticians[1].signer.public]
    assert all((loaded.signer(k), loaded.admin(k), loaded.refusal(k))
               == (reg.signer(k), reg.admin(k), reg.refusal(k)) for k in keys)
    assert [loaded.participant(k.org) for k in (*WORLD.opticians, *WORLD.insurers)] == [
        reg.participant(k.org) for k in (*WORLD.opticians, *WORLD.insurers)]
    assert loaded.orgs() == reg.orgs()


# -- claims under the registry's policy ------------------------------------------------------


def test_claim_too_old() -> None:
    world = h.make_world("gov-age", policy=replace(h.TEST_POLICY, max_claim_age_days=30))
    chain = h.MemoryChain(world)
    claim = h.make_claim(world)
    created = claim.parse().created_at_ms  # type: ignore[union-attr]
    chain.check(claim, time_ms=created + 30 * 86_400_000)  # exactly 30 days: still fine
    with pytest.raises(RuleError) as ei:
        chain.block([claim], time_ms=created + 30 * 86_400_000 + 1)
    assert ei.value.code == "claim_too_old"


def test_tariff_not_in_force() -> None:
    """A claim dispensed before the day the genesis table comes into force."""
    first_day = regmod.day_of(h.GENESIS_TIME_MS) + 30  # after every make_claim date
    world = h.make_world("gov-tariff", policy=replace(h.TEST_POLICY,
                                                       lpp_v1_effective_day=first_day))
    chain = h.MemoryChain(world)
    with pytest.raises(RuleError) as ei:
        chain.block([h.make_claim(world)])
    assert ei.value.code == "tariff_not_in_force"
    assert chain.registry.tariff_at(first_day, world.lpp) == (1, world.lpp)
    assert chain.registry.tariff_at(first_day - 1, world.lpp) is None


# -- broken variants of the security checks --------------------------------------------------


def test_broken_variant_a_registry_that_indexes_revoked_keys(
        chain: h.MemoryChain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the ACTIVE filter of the registry's signer index, a revoked key signs on."""

    def index_all(self: regmod.Registry, rec: regmod.Leaf) -> None:
        if isinstance(rec, regmod.ParticipantRecord):
            self._by_org[rec.org] = rec
            self._by_key[rec.ed25519] = rec
        else:
            self._orgs[rec.name] = rec
            self._admins[rec.admin_ed25519] = rec

    monkeypatch.setattr(regmod.Registry, "_index", index_all)
    chain.block([h.make_change(WORLD, WORLD.admin("federation"), "optic-a", REVOKE)])
    chain.block([h.make_claim(WORLD)])  # accepted: the check is what refuses it


def test_broken_variant_any_admin_may_change_any_participant(
        chain: h.MemoryChain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the own-org check, the insurers' admin suspends a federation shop."""
    monkeypatch.setattr(gov_participants, "_authorise_change", lambda *a: True)
    chain.block([h.make_change(WORLD, WORLD.admin("insurers"), "optic-a", SUSPEND)])
    assert chain.registry.participant("optic-a").status == SUSPENDED  # type: ignore[union-attr]


def test_broken_variant_a_thief_rotates_after_its_admin(
        chain: h.MemoryChain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the pending current-key check, the thief's rotation after the admin's in the
    same block wins: the shop ends up with the thief's keys."""
    monkeypatch.setattr(gov_participants, "_current_active_key", lambda rec, key: True)
    thief = WORLD.key("optic-a", "optician", "/thief")
    chain.block([
        h.make_change(WORLD, WORLD.admin("federation"), "optic-a", ROTATE,
                      WORLD.key("optic-a", "optician", "/fresh")),
        h.make_change(WORLD, WORLD.opticians[0].signer, "optic-a", ROTATE, thief)])
    assert chain.registry.signer(thief.signer.public) is not None


def test_broken_variant_a_retired_key_registered_again(
        chain: h.MemoryChain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``key_in_use``, the rotated-out key of optic-a comes back as another shop's:
    a key would then name two slots, and claims it signed before would be ambiguous."""
    monkeypatch.setattr(gov_participants, "check_new_key", lambda view, ctx, key: None)
    chain.block([h.make_change(WORLD, WORLD.admin("federation"), "optic-a", ROTATE,
                               WORLD.key("optic-a", "optician", "/2"))])
    again = replace(WORLD.key("shop-z", "optician"), signer=WORLD.opticians[0].signer)
    chain.block([h.make_add(WORLD, again)])
    assert chain.registry.signer(WORLD.opticians[0].signer.public).org == "shop-z"  # type: ignore


# -- block semantics -------------------------------------------------------------------------


def test_a_new_shop_signs_only_from_the_block_after_its_add(chain: h.MemoryChain) -> None:
    shop = WORLD.key("shop-n", "optician")
    body = replace(h.make_claim(WORLD).parse(), optician="shop-n")  # type: ignore[type-var]
    claim = h.sign_tx(WORLD.chain_id, shop.signer, body)
    with pytest.raises(RuleError) as ei:
        chain.block([h.make_add(WORLD, shop), claim])
    assert ei.value.code == "unknown_signer"
    chain.block([h.make_add(WORLD, shop)])
    chain.block([claim])


def test_a_replayed_change_is_a_duplicate_and_a_new_nonce_a_new_tx(
        chain: h.MemoryChain) -> None:
    admin = WORLD.admin("federation")
    suspend = h.make_change(WORLD, admin, "optic-a", SUSPEND)
    chain.block([suspend])
    chain.block([h.make_change(WORLD, admin, "optic-a", REINSTATE)])
    refused(chain, suspend, "duplicate_tx")
    chain.block([h.make_change(WORLD, admin, "optic-a", SUSPEND)])


def test_governance_rows_are_a_fifth_element_of_the_state_digest(
        chain: h.MemoryChain) -> None:
    from tpledger.ledger.encoding import pack
    from tpledger.ledger.state import StateChanges

    ov = OverlayState(chain.state)
    from tpledger.ledger.rules import apply_tx

    apply_tx(ov, chain.ctx, h.make_change(WORLD, WORLD.admin(0), "optic-a", SUSPEND), 1,
             h.GENESIS_TIME_MS)
    ch = ov.changes()
    assert ch.gov and ch.gov == ov.gov_writes()
    assert ch.encode() == pack([[], list(ch.tx_ids), [], [], [list(r) for r in ch.gov]])
    plain = StateChanges((), ch.tx_ids)
    assert plain.encode() == pack([[], list(ch.tx_ids)])  # blocks without gov: unchanged

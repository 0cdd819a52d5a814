"""The registry (ledger/registry.py): genesis v2 and v1, the positional tree with in-place
leaf updates, the immutable snapshot and its diffs."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from tests.ledger import helpers as h
from tpledger.ledger.errors import GenesisError, StoreError
from tpledger.ledger.genesis import (
    ACTIVE,
    REVOKED,
    V1_POLICY,
    Genesis,
    GovOrg,
    Identifiers,
)
from tpledger.ledger.merkle import inclusion_path as ref_path
from tpledger.ledger.merkle import root_of
from tpledger.ledger.merkle_tree import MemoryNodeStore, OverlayNodeStore, PersistentTree
from tpledger.ledger.registry import (
    OrgRecord,
    ParticipantRecord,
    Registry,
    RegistryTree,
    decode_leaf,
    gov_key_slot,
    memory_tree,
)

WORLD = h.make_world("registry")


# -- genesis ---------------------------------------------------------------------------------


def test_genesis_v2_json_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "genesis.json"
    WORLD.genesis.save(p)
    body = json.loads(p.read_text())
    assert body["version"] == 2 and body["policy"]["lpp_v1_effective"] == "1970-01-01"
    assert body["participants"][0]["ids"]["siret"] and body["gov_orgs"][0]["name"] == "federation"
    back = Genesis.load(p)
    assert back == WORLD.genesis and back.hash() == WORLD.genesis.hash()


def test_a_v1_genesis_file_still_loads(tmp_path: Path) -> None:
    body = WORLD.genesis.to_json()
    body["version"] = 1
    del body["gov_orgs"], body["policy"]
    for p in body["participants"]:
        del p["gov_org"], p["ids"]
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(body))
    g = Genesis.load(path)
    assert g.gov_orgs == () and g.policy == V1_POLICY
    assert all(p.gov_org == "" and p.ids == Identifiers() for p in g.participants)
    reg = Registry.of_genesis(g)
    assert reg.signer(WORLD.opticians[0].signer.public) is not None and reg.orgs() == ()


def _bad(**changes: object) -> Genesis:
    return replace(WORLD.genesis, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("make, msg", [
    (lambda g: _bad(gov_orgs=(*g.gov_orgs, g.gov_orgs[0])), "duplicate governing"),
    (lambda g: _bad(gov_orgs=(g.gov_orgs[0], replace(g.gov_orgs[1], admin_ed25519=g.gov_orgs[
        0].admin_ed25519))), "duplicate admin key"),
    (lambda g: _bad(gov_orgs=(replace(g.gov_orgs[0], admin_ed25519=g.validators[0].ed25519),
                              *g.gov_orgs[1:])), "admin key is also"),
    (lambda g: _bad(participants=(replace(g.participants[0], gov_org="insurers"),
                                  *g.participants[1:])), "does not govern"),
    (lambda g: _bad(participants=(replace(g.participants[0], ids=Identifiers()),
                                  *g.participants[1:])), "SIRET"),
    (lambda g: _bad(participants=(*g.participants, replace(g.participants[0], org="twin"))),
     "duplicate participant key"),
    (lambda g: _bad(policy=replace(g.policy, threshold=4)), "threshold"),
    (lambda g: _bad(policy=replace(g.policy, tariff_publisher="nobody")), "publisher"),
    (lambda g: _bad(gov_orgs=(GovOrg("x", b"\x05" * 32, ("king",)),)), "unknown role"),
])
def test_genesis_governance_checks(make: object, msg: str) -> None:
    with pytest.raises(GenesisError, match=msg):
        make(WORLD.genesis)  # type: ignore[operator]


def test_genesis_json_with_bad_ids_is_refused(tmp_path: Path) -> None:
    body = WORLD.genesis.to_json()
    body["participants"][0]["ids"]["siret"] = "73282932000075"
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(body))
    with pytest.raises(GenesisError, match="SIRET"):
        Genesis.load(path)
    body["participants"][0]["ids"] = {"nir": "1"}
    path.write_text(json.dumps(body))
    with pytest.raises(GenesisError, match="unknown fields"):
        Genesis.load(path)


# -- the tree --------------------------------------------------------------------------------


def test_set_leaf_hash_matches_the_reference_tree() -> None:
    rng = random.Random(7)
    for n in range(1, 34):
        entries = [rng.randbytes(9) for _ in range(n)]
        tree = PersistentTree(MemoryNodeStore())
        tree.append_entries(entries)
        for _ in range(4):
            i = rng.randrange(n)
            entries[i] = rng.randbytes(5)
            tree.set_leaf_hash(i, hashlib.sha256(b"\x00" + entries[i]).digest())
            assert tree.root() == root_of(entries)
            assert all(tree.root(m) == root_of(entries[:m]) for m in range(1, n + 1))
            assert tree.inclusion_path(i) == ref_path(entries, i)
    with pytest.raises(StoreError):
        tree.set_leaf_hash(n, b"\x00" * 32)
    with pytest.raises(StoreError):
        tree.set_leaf_hash(0, b"short")


def test_registry_tree_set_and_append_over_an_overlay() -> None:
    base = MemoryNodeStore()
    tree = RegistryTree(base)
    tree.set_many([(0, b"a"), (1, b"b"), (2, b"c")])
    over = RegistryTree(OverlayNodeStore(base))
    over.set_many([(3, b"d"), (1, b"B")])
    assert over.root() == root_of([b"a", b"B", b"c", b"d"]) and over.size == 4
    assert tree.root() == root_of([b"a", b"b", b"c"]) and tree.size == 3  # base untouched
    assert over.path(1) == ref_path([b"a", b"B", b"c", b"d"], 1)
    with pytest.raises(StoreError, match="in order"):
        over.set(9, b"gap")


# -- the snapshot ----------------------------------------------------------------------------


def test_genesis_registry_slots_and_lookups() -> None:
    reg = Registry.of_genesis(WORLD.genesis)
    leaves = reg.leaves()
    assert [type(r) for r in leaves[:3]] == [OrgRecord] * 3 and reg.size == 3 + 5
    assert [r.slot for r in leaves] == list(range(reg.size))
    assert reg.root == root_of([r.encode() for r in leaves])
    shop = reg.signer(WORLD.opticians[0].signer.public)
    assert isinstance(shop, ParticipantRecord) and shop.ids.siret and shop.status == ACTIVE
    assert reg.admin(WORLD.admin(0).public) == reg.org("federation")
    assert reg.signer(WORLD.admin(0).public) is None
    assert reg.admin(WORLD.opticians[0].signer.public) is None
    assert reg.refusal(WORLD.admin(0).public) == "wrong_role"
    assert [o.name for o in reg.orgs()] == ["cnam-gov", "federation", "insurers"]
    assert decode_leaf(leaves[4].encode()) == leaves[4]


def test_updated_and_load_agree() -> None:
    tree = memory_tree()
    reg = Registry.of_genesis(WORLD.genesis, tree)
    old = reg.leaf(4)
    assert isinstance(old, ParticipantRecord)
    revoked = replace(old, status=REVOKED, since_height=5)
    new = reg.updated([(gov_key_slot(4), revoked.encode())], tree)
    assert new.signer(old.ed25519) is None and new.refusal(old.ed25519) == "revoked_signer"
    assert reg.signer(old.ed25519) is not None  # the old snapshot is immutable
    assert new.retired_since(reg) == {old.ed25519} and new.changed_slots == {4}
    rows = dict(reg.rows())
    rows[gov_key_slot(4)] = revoked.encode()
    loaded = Registry.load(rows.items(), tree)
    assert (loaded.root, loaded.size, loaded.leaves()) == (new.root, new.size, new.leaves())
    assert loaded.retired_since(reg) == {old.ed25519}  # not its base: the full diff
    with pytest.raises(StoreError):
        Registry.load(list(rows.items())[2:], tree)  # no policy, no size
    with pytest.raises(StoreError, match="tree"):
        new.updated([(gov_key_slot(4), old.encode())], memory_tree())

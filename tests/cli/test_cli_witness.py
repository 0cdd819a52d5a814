"""The witness logic offline: checkpoints made with the test chain's validator signers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.cli.helpers import ENTRIES, FakeNode, cp, header
from tests.ledger.helpers import World, certify, make_world
from tpledger.cli.errors import CliError
from tpledger.cli.witness import Witness, check_consistency
from tpledger.ledger.merkle import consistency_path, root_of
from tpledger.ledger.proofs import Checkpoint


def test_advances_on_a_growing_log(world: World) -> None:
    w = Witness(world.genesis)
    hist = {1: cp(world, 1, 3), 2: cp(world, 2, 10), 3: cp(world, 3, 25)}
    node = FakeNode("n0", hist)
    assert w.observe(hist[1], node).status == "advanced"
    assert w.observe(hist[2], node).status == "advanced"
    assert w.observe(hist[2], node).status == "same"
    assert w.observe(hist[3], node).status == "advanced"
    assert w.held == hist[3]
    # a node behind is checked with a proof from the node that served the held checkpoint
    w.new_poll()
    assert w.observe(hist[2], FakeNode("slow", {1: hist[1], 2: hist[2]})).status == "behind"


def test_two_certificates_at_one_height_name_the_double_signers(world: World) -> None:
    w = Witness(world.genesis)
    a = cp(world, 5, 12, signers=(0, 1, 2))
    b = cp(world, 5, 12, signers=(1, 2, 3), salt=b"fork")
    assert a.header.hash() != b.header.hash()
    assert w.observe(a, FakeNode("honest", {5: a})).status == "advanced"
    out = w.observe(b, FakeNode("forked", {5: b}))
    assert out.status == "fork" and out.evidence is not None
    assert out.evidence.double_signers == (1, 2)
    assert out.evidence.validator_names == ("val-1", "val-2")
    assert "validators who signed both: 1 (val-1), 2 (val-2)" in out.message
    # both certificates are of round 0: the double signers are proven equivocators
    assert out.evidence.proven == (1, 2) and out.evidence.suspects == ()
    assert "proven equivocators" in out.message
    ev = out.evidence.to_json()
    assert ev["proven_equivocators"] == [1, 2] and ev["suspects"] == []
    assert ev["height"] == 5 and {ev["a"]["source"], ev["b"]["source"]} == {"honest", "forked"}
    # the evidence is self-contained: both checkpoints verify on their own
    for side in ("a", "b"):
        assert Checkpoint.from_bytes(bytes.fromhex(ev[side]["checkpoint"])).height == 5


def test_a_fork_below_the_head_is_pinned_on_one_height(world: World) -> None:
    """The held log and a newer one diverge: the witness asks the newer node for its
    checkpoint at the held height and finds a second certificate there."""
    w = Witness(world.genesis)
    held = cp(world, 4, 10, signers=(0, 1, 2))
    other_entries = [b"x" + e for e in ENTRIES]
    their4 = Checkpoint(replace(header(4, 10), tree_root=root_of(other_entries[:10])),
                        certify(world, replace(header(4, 10),
                                               tree_root=root_of(other_entries[:10])), (0, 2, 3)))
    their6 = Checkpoint(replace(header(6, 20), tree_root=root_of(other_entries[:20])),
                        certify(world, replace(header(6, 20),
                                               tree_root=root_of(other_entries[:20]))))
    w.observe(held, FakeNode("n0", {4: held}))
    out = w.observe(their6, FakeNode("n1", {4: their4, 6: their6}, other_entries))
    assert out.status == "fork" and out.evidence is not None
    assert out.evidence.height == 4 and out.evidence.double_signers == (0, 2)
    assert out.evidence.proven == (0, 2)  # all round 0 here


def test_signers_of_two_rounds_are_suspects_not_proven(world: World) -> None:
    from tests.cli.helpers import header
    from tests.ledger.helpers import certify

    w = Witness(world.genesis)
    a, hb = cp(world, 5, 12, signers=(0, 1, 2)), header(5, 12, b"fork")
    b = Checkpoint(hb, certify(world, hb, (1, 2, 3), round_=2))
    w.observe(a, FakeNode("n0", {5: a}))
    out = w.observe(b, FakeNode("n1", {5: b}))
    assert out.evidence is not None and out.evidence.double_signers == (1, 2)
    assert out.evidence.proven == () and out.evidence.suspects == (1, 2)
    assert "suspects, not proven" in out.message


def test_invalid_and_inconsistent_checkpoints(world: World) -> None:
    w = Witness(world.genesis)
    good = cp(world, 2, 8)
    too_few = cp(world, 3, 9, signers=(0, 1))  # 2 of 4 is no quorum
    assert w.observe(too_few, FakeNode("n", {})).status == "invalid"
    w.observe(good, FakeNode("n", {2: good}))
    # a node whose proof does not link the roots, without a second certificate to show
    liar = FakeNode("liar", {2: good}, [b"y" + e for e in ENTRIES])
    out = w.observe(cp(world, 3, 20), liar)
    assert out.status == "inconsistent" and w.held == good


def test_check_consistency_rejects_a_shrinking_log(world: World) -> None:
    old, new = cp(world, 1, 5), cp(world, 2, 9)
    assert check_consistency(old, new, consistency_path(ENTRIES[:9], 5), world.genesis)[0]
    assert not check_consistency(new, old, [], world.genesis)[0]


def test_state_file_round_trip_and_refusals(world: World, tmp_path: Path) -> None:
    state = tmp_path / "w.json"
    w = Witness(world.genesis)
    w.observe(cp(world, 3, 7), FakeNode("n", {}))
    w.save(state)
    assert not list(tmp_path.glob("*.part"))  # written atomically, no leftovers
    w2 = Witness.load(world.genesis, state)
    assert w2.held == w.held
    other = make_world("another")
    with pytest.raises(CliError, match="another genesis"):
        Witness.load(other.genesis, state)
    state.write_text(json.dumps({"kind": "nope"}))
    with pytest.raises(CliError, match="not a witness state"):
        Witness.load(world.genesis, state)

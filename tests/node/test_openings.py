"""The off-ledger store of sealed openings, keyed by the claims' places in the log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tpledger.node.errors import NodeError
from tpledger.node.openings import MAX_SEALED_BYTES, OpeningStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[OpeningStore]:
    s = OpeningStore(tmp_path / "openings")
    yield s
    s.close()


def test_a_block_of_openings_then_reads_by_place(store: OpeningStore) -> None:
    store.put_many([(3, 1, "cnam", b"c31"), (3, 0, "mutuelle-a", b"a30"), (3, 0, "cnam", b"c30"),
                    (3, 1, "mutuelle-b", b"b31")])
    assert store.get((3, 0), "cnam") == b"c30" and store.get((3, 1), "mutuelle-b") == b"b31"
    assert store.get((3, 0), "mutuelle-b") is None and store.get((4, 0), "cnam") is None
    assert store.orgs((3, 0)) == ["cnam", "mutuelle-a"] and store.orgs((3, 2)) == []
    assert store.count() == 4
    # the next block's openings come after (the append path) ...
    store.put_many([(4, 0, "cnam", b"c40")])
    # ... and late openings of an older claim, or a repeat, still land (the search path)
    store.put_many([(2, 7, "cnam", b"c27"), (3, 0, "cnam", b"c30")])
    store.put_many([(9, 0, "cnam", b"c90"), (9, 0, "cnam", b"c90")])  # same row twice
    assert store.get((2, 7), "cnam") == b"c27" and store.get((9, 0), "cnam") == b"c90"
    assert store.count() == 7
    assert store.oldest(10) == [(2, 7), (3, 0), (3, 1), (4, 0), (9, 0)]
    assert store.oldest(2) == [(2, 7), (3, 0)]


def test_positions_and_heights_sort_as_numbers(store: OpeningStore) -> None:
    store.put_many([(1, 256, "cnam", b"x"), (1, 2, "cnam", b"y"), (256, 0, "cnam", b"z"),
                    (2, 0, "cnam", b"w")])
    assert store.oldest(10) == [(1, 2), (1, 256), (2, 0), (256, 0)]


def test_forgotten_claims_stay_forgotten(store: OpeningStore) -> None:
    store.put_many([(5, 0, "cnam", b"a"), (5, 0, "mutuelle-a", b"b"), (6, 3, "cnam", b"c")])
    assert store.forget((5, 0), "cnam") == 1  # one payer only: no tombstone
    assert not store.is_forgotten((5, 0))
    store.put_many([(5, 0, "cnam", b"a")])
    assert store.orgs((5, 0)) == ["cnam", "mutuelle-a"]
    assert store.forget((5, 0)) == 2 and store.is_forgotten((5, 0))
    assert store.orgs((5, 0)) == [] and not store.is_forgotten((6, 3))
    # a replay of the forgotten claim's openings, alone or among newer ones, is dropped
    store.put_many([(5, 0, "cnam", b"a")])
    store.put_many([(5, 0, "mutuelle-a", b"b"), (7, 0, "cnam", b"d")])
    assert store.orgs((5, 0)) == [] and store.get((7, 0), "cnam") == b"d"
    assert store.oldest(10) == [(6, 3), (7, 0)]
    assert store.forget((42, 0)) == 0 and store.is_forgotten((42, 0))


def test_oversize_opening_is_refused_and_nothing_written(store: OpeningStore) -> None:
    with pytest.raises(NodeError):
        store.put_many([(1, 0, "cnam", b"ok"), (1, 1, "cnam", b"x" * (MAX_SEALED_BYTES + 1))])
    assert store.count() == 0


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    s = OpeningStore(tmp_path / "o")
    s.put_many([(1, 0, "cnam", b"a"), (1, 1, "cnam", b"b")])
    s.forget((1, 1))
    s.close()
    s = OpeningStore(tmp_path / "o")
    assert s.get((1, 0), "cnam") == b"a" and s.is_forgotten((1, 1)) and s.count() == 1
    s.close()


def test_a_tombstone_keeps_the_request_that_entitled_it(store: OpeningStore) -> None:
    store.put_many([(7, 1, "cnam", b"c"), (7, 1, "mutuelle-a", b"a")])
    assert store.tombstone((7, 1)) is None
    assert store.forget((7, 1), request=b"signed forget request") == 2
    assert store.tombstone((7, 1)) == b"signed forget request"
    store.put_many([(7, 1, "cnam", b"c")])  # a replayed submission does not bring it back
    assert store.orgs((7, 1)) == []

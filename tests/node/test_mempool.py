"""The mempool against a deliberately simple model (a list), and its limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tpledger.node.mempool import Mempool, MempoolFull, PendingTx


def _tx(i: int, raw_len: int = 10, sealed_lens: tuple[int, ...] = (5,)) -> PendingTx:
    return PendingTx(i.to_bytes(32, "big"), bytes([i % 256]) * raw_len, None,  # type: ignore[arg-type]
                     tuple((f"org{k}", b"s" * n) for k, n in enumerate(sealed_lens)), 0)


def test_limits_duplicates_and_fifo() -> None:
    m = Mempool(max_txs=3, max_bytes=60)
    assert m.add(_tx(1)) and not m.add(_tx(1))  # 15 bytes; a duplicate is not added twice
    assert m.add(_tx(2, 20)) and len(m) == 2 and m.size_bytes == 40
    with pytest.raises(MempoolFull):
        m.add(_tx(3, 30))  # 35 more bytes: over 60
    assert m.add(_tx(4)) and m.size_bytes == 55
    with pytest.raises(MempoolFull):
        m.add(_tx(5, 1, ()))  # a fourth tx: over the count
    assert [t.tx_id[-1] for t in m.take(10, 1000)] == [1, 2, 4]
    assert [t.tx_id[-1] for t in m.take(2, 1000)] == [1, 2]
    assert [t.tx_id[-1] for t in m.take(10, 25)] == [1]  # raw bytes 10 + 20 > 25
    removed = m.remove([(2).to_bytes(32, "big"), (9).to_bytes(32, "big")])
    assert [t.tx_id[-1] for t in removed] == [2] and m.size_bytes == 30 and m.room() == 1
    assert m.get((1).to_bytes(32, "big")) == _tx(1) and m.get((2).to_bytes(32, "big")) is None
    assert (4).to_bytes(32, "big") in m and (2).to_bytes(32, "big") not in m


ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 20), st.integers(1, 40),
              st.lists(st.integers(0, 30), max_size=3)),
    st.tuples(st.just("remove"), st.lists(st.integers(0, 20), max_size=5)),
    st.tuples(st.just("take"), st.integers(0, 8), st.integers(0, 200)),
), max_size=60)


@settings(max_examples=200)
@given(ops)
def test_mempool_behaves_like_a_list(script: list[tuple]) -> None:  # type: ignore[type-arg]
    m = Mempool(max_txs=8, max_bytes=300)
    model: list[PendingTx] = []

    def size(t: PendingTx) -> int:
        return len(t.raw) + sum(len(s) for _, s in t.sealed)

    for op in script:
        if op[0] == "add":
            tx = _tx(op[1], op[2], tuple(op[3]))
            if any(t.tx_id == tx.tx_id for t in model):
                assert m.add(tx) is False
            elif len(model) >= 8 or sum(map(size, model)) + size(tx) > 300:
                with pytest.raises(MempoolFull):
                    m.add(tx)
            else:
                assert m.add(tx) is True
                model.append(tx)
        elif op[0] == "remove":
            ids = [i.to_bytes(32, "big") for i in op[1]]
            expected = []
            for tx_id in ids:
                hit = [t for t in model if t.tx_id == tx_id]
                if hit:
                    expected.append(hit[0])
                    model.remove(hit[0])
            assert m.remove(ids) == expected
        else:
            out, total = [], 0
            for t in model:
                if len(out) >= op[1] or total + len(t.raw) > op[2]:
                    break
                out.append(t)
                total += len(t.raw)
            assert m.take(op[1], op[2]) == out
        assert len(m) == len(model) and m.size_bytes == sum(map(size, model))


class _Stx:
    def __init__(self, signer: bytes) -> None:
        self.signer = signer


def test_drop_signers_removes_only_their_txs() -> None:
    m = Mempool(max_txs=10)
    for i in range(6):
        m.add(_tx(i)._replace(stx=_Stx(b"k%d" % (i % 3))))  # type: ignore[arg-type]
    before = m.size_bytes
    dropped = m.drop_signers(frozenset({b"k1"}))
    assert [t.tx_id[-1] for t in dropped] == [1, 4]
    assert [t.tx_id[-1] for t in m.take(10, 10_000)] == [0, 2, 3, 5]
    assert m.size_bytes == before - sum(t.size_bytes for t in dropped)
    assert m.drop_signers([b"k0", b"k9"]) and len(m) == 2  # any collection of keys
    assert m.drop_signers(()) == [] and len(m) == 2

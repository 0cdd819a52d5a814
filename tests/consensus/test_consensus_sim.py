"""Simulator: behaviours, reproducibility, hypothesis schedules, broken variants that must fail.

The CI batches of mixed-fault runs are in test_consensus_sim_n4.py and test_consensus_sim_n7.py.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpledger.consensus.machine import Consensus
from tpledger.consensus.messages import Timer
from tpledger.consensus.sim import (
    BEHAVIOURS,
    Factory,
    SimConfig,
    SimResult,
    SimViolation,
    random_scenario,
    run_one,
)


def test_fault_injection_is_live() -> None:
    """The mixed scenarios really crash nodes, lose messages and meet Byzantine input."""
    totals: Counter[str] = Counter()
    evidence = 0
    for seed in range(10_000, 10_060):
        res = run_one(random_scenario(seed, 4))
        totals.update(res.stats)
        evidence += res.evidence
    assert totals["crashes"] > 0
    assert totals["crash_before_apply"] > 0 and totals["crash_mid_send"] > 0  # inside a Ready
    assert totals["dropped_unnamed_vote"] > 0  # kvalues
    assert totals["dropped_future_duplicate"] > 0 and totals["dropped_future_far_round"] > 0
    assert totals["dropped_bad_encoding"] > 0  # garbage
    assert totals["dropped_old_height"] > 0
    assert totals["rebroadcast"] > 0
    assert evidence > 0  # equivocators were caught


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_each_byzantine_behaviour(behaviour: str) -> None:
    results: list[SimResult] = []
    for seed in range(3):
        for n in (4, 7):
            byz = {i: behaviour for i in range((n - 1) // 3)}  # f of them
            cfg = SimConfig(seed=seed, n=n, heights=4, loss=0.1, gst_ms=2000, partitions=1,
                            dup=0.05, skew=0.2, byzantine=byz)
            results.append(run_one(cfg))
    evidence = sum(r.evidence for r in results)
    stats: Counter[str] = Counter()
    for r in results:
        stats.update(r.stats)
    if behaviour in ("equivocate", "twins"):
        assert evidence > 0
    elif behaviour in ("silent", "replay", "garbage"):
        assert evidence == 0  # nobody signed two votes for one slot
    if behaviour == "garbage":
        assert stats["dropped_bad_encoding"] > 0 and stats["dropped_bad_signature"] > 0
    if behaviour == "replay":
        assert stats["duplicate"] + stats["dropped_old_height"] > 0
    if behaviour == "kvalues":  # junk values past the free slots are dropped, unread
        assert stats["dropped_unnamed_vote"] > 0
    if behaviour == "multipropose":
        assert evidence > 0 and stats["dropped_proposal_flood"] > 0
    if behaviour == "victim_replay":
        assert stats["duplicate"] + stats["dropped_future_duplicate"] > 0
    if behaviour == "future_flood":
        assert stats["far_round"] > 0 and stats["buffered_future"] > 0
        assert stats["dropped_buffer_bytes"] + stats["dropped_buffer_full"] > 0


def test_crash_between_persist_and_send() -> None:
    total_crashes = 0
    for seed in range(6):
        cfg = SimConfig(seed=seed, n=4, heights=5, gst_ms=4000, mid_ready_crash=0.1, loss=0.1)
        total_crashes += run_one(cfg).stats["crashes"]
    assert total_crashes > 5


def test_same_seed_same_run() -> None:
    cfg = random_scenario(10_007, 4)
    a, b = run_one(cfg), run_one(cfg)
    assert a.fingerprint == b.fingerprint
    assert (a.events, a.messages, a.heights) == (b.events, b.messages, b.heights)
    assert run_one(random_scenario(10_008, 4)).fingerprint != a.fingerprint


# ---------------------------------------------------------------------------------------------
# Deliberately broken variants: the checks must be able to fail.


class LowQuorum(Consensus):
    """Broken: decides with n//2 votes instead of 2f+1."""

    def _quorum(self) -> int:
        return self.n // 2


class NeverTimesOutPrecommit(Consensus):
    """Broken: ignores timeout_precommit, so a failed round is never left."""

    def on_timeout(self, timer: Timer):  # type: ignore[no-untyped-def]
        if timer.kind == "precommit":
            return self._flush()
        return super().on_timeout(timer)


class NoLocking(Consensus):
    """Broken: never locks, and forgets the valid value (so proposers never re-propose it)."""

    def _lock(self, round: int, value_id: bytes) -> None:
        return None

    def _r36_lock(self) -> bool:
        changed = super()._r36_lock()
        self.valid_value = self.valid_round = self.valid_payload = None
        return changed


def _partitioned(seed: int, n: int = 4, **kw: object) -> SimConfig:
    """A hostile but legal schedule: partitions that heal, GST at 6-8 s, short liveness bound."""
    base = SimConfig(seed=seed, n=n, partitions=3, gst_ms=6000, liveness_bound_ms=10_000)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _first_violation(factory: Factory, configs: list[SimConfig], kind: str) -> SimViolation:
    seen: Counter[str] = Counter()
    for cfg in configs:
        try:
            run_one(cfg, factory)
        except SimViolation as exc:
            seen[exc.kind] += 1
            if exc.kind == kind:
                return exc
    raise AssertionError(f"{factory.__name__}: no {kind} violation in {len(configs)} runs "
                         f"(other violations: {dict(seen)})")


def test_honest_code_passes_the_hostile_schedules() -> None:
    for seed in range(10):
        run_one(_partitioned(seed))
    for seed in range(10):
        run_one(_partitioned(seed, partitions=4, precommit_loss=0.5, gst_ms=8000,
                             byzantine={0: "equivocate"}))


def test_lowered_quorum_is_caught_as_disagreement() -> None:
    # Certificate checks off, so that the *agreement* check is what catches it.
    cfgs = [_partitioned(s, verify_certificates=False) for s in range(20)]
    exc = _first_violation(LowQuorum, cfgs, "agreement")
    assert f"seed={exc.seed}" in str(exc) and "reproduce:" in str(exc)
    assert "committed" in "\n".join(exc.trace)


def test_lowered_quorum_is_caught_by_certificate_check() -> None:
    exc = _first_violation(LowQuorum, [random_scenario(s, 4) for s in range(5)], "validity")
    assert "certificate" in exc.detail


def test_removed_locking_is_caught_as_disagreement() -> None:
    cfgs = [_partitioned(s, partitions=4, precommit_loss=0.5, gst_ms=8000,
                         byzantine={0: "equivocate"}) for s in range(60)]
    _first_violation(NoLocking, cfgs, "agreement")


def test_stuck_rounds_are_caught_by_liveness_check() -> None:
    _first_violation(NeverTimesOutPrecommit, [random_scenario(s, 4) for s in range(100)],
                     "liveness")


def test_failing_seed_reproduces_exactly() -> None:
    cfgs = [_partitioned(s, verify_certificates=False) for s in range(20)]
    exc = _first_violation(LowQuorum, cfgs, "agreement")
    with pytest.raises(SimViolation) as again:
        run_one(_partitioned(exc.seed, verify_certificates=False), LowQuorum)
    assert again.value.trace == exc.trace and again.value.kind == exc.kind
    assert str(again.value) == str(exc)


# ---------------------------------------------------------------------------------------------
# Hypothesis: fault schedules drawn by hypothesis (bounded examples).


@st.composite
def fault_schedules(draw: st.DrawFn) -> SimConfig:
    n = draw(st.sampled_from((4, 4, 7)))
    f = (n - 1) // 3
    byz_ids = draw(st.lists(st.integers(0, n - 1), max_size=f, unique=True))
    byzantine = {i: draw(st.sampled_from(BEHAVIOURS)) for i in byz_ids}
    return SimConfig(
        seed=draw(st.integers(0, 2**32)),
        n=n,
        heights=3,
        delay_ms=(draw(st.integers(1, 20)), draw(st.integers(20, 200))),
        loss=draw(st.sampled_from((0.0, 0.1, 0.3, 0.5))),
        precommit_loss=draw(st.sampled_from((0.0, 0.5, 0.9))),
        dup=draw(st.sampled_from((0.0, 0.2))),
        partitions=draw(st.integers(0, 3)),
        crashes=draw(st.integers(0, 4)),
        mid_ready_crash=draw(st.sampled_from((0.0, 0.05))),
        skew=draw(st.sampled_from((0.0, 0.3, 0.5))),
        byzantine=byzantine,
        gst_ms=draw(st.integers(0, 8000)),
    )


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(fault_schedules())
def test_hypothesis_fault_schedules(cfg: SimConfig) -> None:
    res = run_one(cfg)
    assert res.heights >= cfg.heights

"""Mixed-fault simulator runs at n=4 (8 chunks of 30; see test_consensus_sim.py).

One file per validator count so that ``pytest -n 2 --dist loadfile`` spreads them.
"""

from __future__ import annotations

import pytest

from tpledger.consensus.sim import run_batch

CHUNKS, RUNS = 8, 30


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_mixed_faults_n4(chunk: int) -> None:
    seed0 = 10000 + chunk * RUNS
    rep = run_batch(range(seed0, seed0 + RUNS), 4)
    assert rep.runs == RUNS
    assert not rep.violations, "\n\n".join(str(v) for v in rep.violations)
    assert rep.heights >= 4 * RUNS  # every run reached its target height

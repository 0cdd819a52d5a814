"""Mixed-fault simulator runs at n=7 (6 chunks of 12; see test_consensus_sim.py).

One file per validator count so that ``pytest -n 2 --dist loadfile`` spreads them.
"""

from __future__ import annotations

import pytest

from tpledger.consensus.sim import run_batch

CHUNKS, RUNS = 6, 12


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_mixed_faults_n7(chunk: int) -> None:
    seed0 = 20000 + chunk * RUNS
    rep = run_batch(range(seed0, seed0 + RUNS), 7)
    assert rep.runs == RUNS
    assert not rep.violations, "\n\n".join(str(v) for v in rep.violations)
    assert rep.heights >= 4 * RUNS  # every run reached its target height

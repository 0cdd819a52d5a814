"""Long soak of the simulator (``make soak``; excluded from ``make test``).

TPLEDGER_SOAK_RUNS (default 2000) runs per validator count, TPLEDGER_SOAK_SEED (default
1_000_000) the first seed, TPLEDGER_SOAK_N (default "4,7") the validator counts. For 100,000:
``TPLEDGER_SOAK_RUNS=100000 .venv/bin/python -m pytest -q -m soak -s tests/consensus``.
"""

from __future__ import annotations

import os
import time

import pytest

from tpledger.consensus.sim import run_batch


@pytest.mark.soak
def test_soak() -> None:
    runs = int(os.environ.get("TPLEDGER_SOAK_RUNS", "2000"))
    seed0 = int(os.environ.get("TPLEDGER_SOAK_SEED", "1000000"))
    ns = [int(x) for x in os.environ.get("TPLEDGER_SOAK_N", "4,7").split(",")]
    failures = []
    for n in ns:
        t0 = time.perf_counter()
        rep = run_batch(range(seed0, seed0 + runs), n)
        print(f"\nsoak n={n}: {rep.summary()} wall={time.perf_counter() - t0:.0f}s")
        for v in rep.violations:
            print(f"  seed={v.seed} {v.kind}: {v.detail}")
        failures.extend(rep.violations)
    assert not failures, "\n\n".join(str(v) for v in failures[:3])

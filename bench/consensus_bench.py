"""Consensus benchmark: the fault-free simulator at n = 4, 7, 10.

Run ``python -m bench.consensus_bench [--heights 50]``. For each n, one simulated run with no
faults (network delay 2-20 ms, no loss) until every validator has committed ``--heights``
blocks. Reports:

* consensus steps per second: state-machine inputs (messages, timers, payloads) processed per
  wall-clock second, all n machines together, Ed25519 signing and verification included;
* messages per committed block: point-to-point deliveries (one broadcast to n-1 peers counts
  n-1) divided by the number of heights;
* simulated time per block (the protocol's latency with these timeouts; 20 ms timeout_commit).
"""

from __future__ import annotations

import argparse
import time

from tpledger.consensus.sim import SimConfig, run_one


def bench(n: int, heights: int) -> tuple[float, float, float, float]:
    cfg = SimConfig(seed=1, n=n, heights=heights, delay_ms=(2, 20), liveness_heights=0,
                    liveness_bound_ms=10**9)
    t0 = time.perf_counter()
    res = run_one(cfg)
    wall = time.perf_counter() - t0
    return res.events / wall, res.messages / res.heights, res.sim_time_ms / res.heights, wall


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.consensus_bench")
    ap.add_argument("--heights", type=int, default=50)
    args = ap.parse_args(argv)
    print(f"fault-free simulator, {args.heights} heights per run")
    print(f"{'n':>3} {'steps/s':>10} {'msgs/block':>11} {'sim ms/block':>13} {'wall s':>7}")
    for n in (4, 7, 10):
        steps, msgs, ms, wall = bench(n, args.heights)
        print(f"{n:>3} {steps:>10.0f} {msgs:>11.1f} {ms:>13.1f} {wall:>7.2f}")


if __name__ == "__main__":
    main()

"""Run every benchmark in sequence (``make bench``): Merkle log vs pymerkle at 1M leaves,
proof bundles, consensus steps, and the end-to-end cluster. Each prints its own table."""

from __future__ import annotations

import subprocess
import sys

BENCHES = [
    ["bench.merkle_bench"],
    ["bench.proof_bench"],
    ["bench.consensus_bench"],
    ["bench.cluster_bench"],
]


def main() -> int:
    worst = 0
    for mod in BENCHES:
        print(f"\n=== python -m {' '.join(mod)}", flush=True)
        rc = subprocess.call([sys.executable, "-m", *mod])
        worst = max(worst, rc)
    return worst


if __name__ == "__main__":
    sys.exit(main())

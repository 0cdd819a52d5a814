"""A/B of ``tpledger bench``: two source trees, alternating runs, one summary.

    python -m bench.ab --a /path/to/old/tree --b /path/to/new/tree --runs 3 [--claims 20000]
                       [--b-args '--registry 100000']

Each run is ``python -m tpledger.cli.main bench --json F`` (``cli.main`` in trees older than
the ``tpledger`` package) with ``PYTHONPATH`` set to the tree (so the node subprocesses run that
tree's code too); runs alternate A, B, A, B... on one machine so
that drift in its load hits both. Prints each run and, per side, the range and median of
claims/s, fraction of the Ed25519 bound, p99 latency and validator CPU per claim beside one
verification.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

FIELDS = ("committed_per_s", "fraction_of_bound", "latency_p99_s", "node_cpu_us_per_claim",
          "verify_us")


def run_once(tree: Path, claims: int, out: Path, extra: list[str]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    main = "tpledger.cli.main" if (tree / "tpledger").is_dir() else "cli.main"  # older trees
    subprocess.run([sys.executable, "-m", main, "bench", "--claims", str(claims),
                    "--json", str(out), *extra], cwd=tree, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def summary(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    return {f: (min(r[f] for r in rows), statistics.median(r[f] for r in rows),
                max(r[f] for r in rows)) for f in FIELDS}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", type=Path, required=True)
    ap.add_argument("--b", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--claims", type=int, default=20_000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--a-args", default="", help="extra bench options for side A, one string")
    ap.add_argument("--b-args", default="", help="e.g. '--registry 100000' for side B")
    args = ap.parse_args()
    extra = {"A": shlex.split(args.a_args), "B": shlex.split(args.b_args)}
    rows: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for side, tree in (("A", args.a), ("B", args.b)):
                r = run_once(tree.resolve(), args.claims, Path(tmp) / f"{side}{i}.json",
                             extra[side])
                rows[side].append(r)
                print(f"{side}{i}: " + ", ".join(f"{f}={r[f]}" for f in FIELDS), flush=True)
    for side in ("A", "B"):
        s = summary(rows[side])
        print(f"{side} ({len(rows[side])} runs): " + "; ".join(
            f"{f} {lo:g}..{hi:g} (median {med:g})" for f, (lo, med, hi) in s.items()))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

"""Crash atomicity: SIGKILL a writer mid-apply; the store is at a block boundary, audit passes."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tpledger.ledger.audit import audit

try:
    from tests.ledger import helpers as h
except ModuleNotFoundError:  # pytest run without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.ledger import helpers as h

REPO = Path(__file__).resolve().parents[2]
SEED = "crash"

WRITER = """
import os, random, sys
sys.path.insert(0, sys.argv[2])
from tests.ledger import helpers as h
world = h.make_world(sys.argv[3])
world.rng = random.Random(os.getpid())
store = h.open_store(sys.argv[1], world)
print("open", store.height, flush=True)
while True:
    block, cert = h.make_block(world, store, [h.make_claim(world, i % 2, i % 2)
                                              for i in range(60)])
    store.apply_certified(block, cert)
    print("applied", block.header.height, flush=True)
"""


class _Lines:
    """Reads the writer's stdout without blocking past a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def lines(self) -> list[str]:
        """Complete lines only: a kill may cut the last one short (``applied``, no height)."""
        complete, _, _partial = self.buf.rpartition(b"\n")
        return complete.decode().splitlines()

    def read_until(self, deadline_s: float, first_line_only: bool = False) -> None:
        while not (first_line_only and b"\n" in self.buf):
            left = deadline_s - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return
            self.buf += chunk


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_sigkill_mid_apply_leaves_a_consistent_store(tmp_path: Path) -> None:
    world = h.make_world(SEED)
    path = tmp_path / "db"
    rng = random.Random(7)
    last_reported = 0
    for _round in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(REPO), SEED],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO),
        )
        try:
            # wait until it has opened the store, then let it write for a random while
            out = _Lines(proc)
            out.read_until(time.monotonic() + 20, first_line_only=True)
            assert out.lines() and out.lines()[0].startswith("open"), "writer did not start"
            out.read_until(time.monotonic() + rng.uniform(0.3, 0.9))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        out.read_until(time.monotonic() + 5)  # what it printed before the kill, to EOF
        applied = [int(x.split()[1]) for x in out.lines() if x.startswith("applied")]
        assert applied, "the writer applied no block before being killed"
        last_reported = max(applied)
        s = h.open_store(path, world)
        try:
            height = s.height
            # durable: every block reported applied is there; at most one more got in
            assert last_reported <= height <= last_reported + 1
            assert s.tree_size == s.header(height).tree_size
            report = audit(s, world.genesis, world.lpp)
            assert report.ok, report
            assert report.heights_checked == height
        finally:
            s.close()

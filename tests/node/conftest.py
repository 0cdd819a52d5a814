"""Fixtures for end-to-end tests: real node subprocesses on free 127.0.0.1 ports."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tpledger.cli.claims import ClaimBuilder, ClaimInput, PreparedClaim
from tpledger.cli.client import NodeClient
from tpledger.cli.cluster import LocalCluster
from tpledger.ledger.patient import make_test_birth_date, make_test_nir


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root: Path = tmp_path_factory.mktemp("cluster") / "c"
    with LocalCluster(root, validators=4, startup_timeout_s=60) as c:
        yield c


def wait_until(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``pred`` until true; fail the test naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def make_claims(c: LocalCluster, optician: str, insurer: str, n: int,
                seed: int) -> tuple[list[PreparedClaim], list[tuple[str, str]]]:
    """``n`` signed claims with random valid patients; returns them and the (nir, date) used."""
    rng = random.Random(seed)
    builder = ClaimBuilder(c.key(optician), c.genesis())
    claims, patients = [], []
    for i in range(n):
        nir, bd = make_test_nir(rng), make_test_birth_date(rng)
        patients.append((nir, bd))
        inp = ClaimInput(f"claim {i}", insurer, nir, bd, f"M{rng.randrange(10**6):06d}",
                         (("2210546", 1, 3049), ("2261874", 2, 2408)))
        claims.append(builder.build(inp))
    return claims, patients


def status(url: str) -> dict[str, object]:
    with NodeClient(url, timeout_s=5, max_retries=0) as cl:
        return cl.status()

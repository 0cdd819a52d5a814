"""Fixtures for end-to-end tests: real node subprocesses on free 127.0.0.1 ports."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tpledger.cli.claims import ClaimBuilder, ClaimInput, PreparedClaim
from tpledger.cli.client import ClientError, NodeClient
from tpledger.cli.cluster import LocalCluster
from tpledger.ledger.patient import make_test_birth_date, make_test_nir


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root: Path = tmp_path_factory.mktemp("cluster") / "c"
    with LocalCluster(root, validators=4, startup_timeout_s=60) as c:
        yield c


def wait_until(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``pred`` until true; fail the test naming ``what`` after ``timeout_s``. A node's
    error answer (``ClientError``: a 404 from a node that has not applied the block yet, a
    node busy restarting) counts as "not yet"; the last one is named if time runs out."""
    deadline = time.monotonic() + timeout_s
    last: ClientError | None = None
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except ClientError as exc:
            last = exc
        time.sleep(0.1)
    seen = f" (last answer: {last})" if last is not None else ""
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}{seen}")


def _height(url: str) -> int | None:
    try:
        return int(status(url)["height"])  # type: ignore[call-overload]
    except (ClientError, OSError):  # a node a test stopped on purpose
        return None


def level_nodes(urls: list[str], timeout_s: float = 60) -> None:
    """Wait until every reachable node has applied the highest block any of them has: a
    commit seen on one node reaches the others a moment later, and a read there must not
    miss it."""
    top = max((h for h in map(_height, urls) if h is not None), default=0)
    wait_until(lambda: all(h is None or h >= top for h in map(_height, urls)), timeout_s,
               f"every node at height {top}")


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

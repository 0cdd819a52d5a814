"""Shared fixtures of the CLI tests: one initialised cluster directory per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledger.helpers import World, make_world
from tpledger.cli.cluster import ClusterInfo, init_cluster


@pytest.fixture(scope="session")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-validator cluster written by ``init_cluster`` (read-only for tests)."""
    root = tmp_path_factory.mktemp("cluster") / "c"
    init_cluster(root, validators=4, base_port=0, chain_id="tpledger-test")
    return root


@pytest.fixture(scope="session")
def cluster_info(cluster_dir: Path) -> ClusterInfo:
    return ClusterInfo.load(cluster_dir)


@pytest.fixture(scope="module")
def world() -> World:
    """The chain of the witness tests (validators val-0 .. val-3)."""
    return make_world("witness")

"""Re-verify a stopped node's whole store from genesis (``tpledger audit``), with a progress
bar on a terminal; the checks themselves are :func:`ledger.audit.audit`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tpledger.cli import render
from tpledger.cli.errors import CliError
from tpledger.ledger.audit import AuditReport, audit
from tpledger.ledger.errors import GenesisError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.lpp import LppTable
from tpledger.node.config import NodeConfig

STORE_SUBDIR = "ledger"  # node.runtime opens its store at DATA_DIR/ledger


def store_path(cfg: NodeConfig) -> Path:
    """Where a node keeps its LMDB store."""
    return cfg.data_dir / STORE_SUBDIR


def run_audit(config_path: Path, genesis_path: Path, as_json: bool) -> AuditReport:
    """Audit the store of the node configured by ``config_path``; raise CliError if bad."""
    cfg = NodeConfig.load(config_path)
    genesis = Genesis.load(genesis_path)
    if cfg.genesis.resolve() != genesis_path.resolve():
        node_genesis = Genesis.load(cfg.genesis)
        if node_genesis.hash() != genesis.hash():
            raise GenesisError(f"{genesis_path}: not the genesis of the node ({cfg.genesis})")
    lpp = LppTable.load_csv(cfg.lpp_table) if cfg.lpp_table else LppTable.default()
    path = store_path(cfg)
    if not path.exists():
        raise CliError(f"{path}: no store here (has the node ever run?)")
    err = Console(stderr=True, highlight=False)
    if err.is_terminal and not as_json:
        with Progress(TextColumn("auditing"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as progress:
            task = progress.add_task("audit", total=None)

            def step(height: int, head: int) -> None:
                progress.update(task, completed=height, total=head)

            report = audit(path, genesis, lpp, step)
    else:
        report = audit(path, genesis, lpp)
    if as_json:
        render.print_json({
            "ok": report.ok,
            "heights_checked": report.heights_checked,
            "first_bad_height": report.first_bad_height,
            "reason": report.reason,
            "tx_count": report.tx_count,
            "governance_txs": report.governance_txs,
            "proposals_executed": report.proposals_executed,
        })
    if not report.ok:
        where = (f"first bad height {report.first_bad_height}"
                 if report.first_bad_height is not None else "audit failed")
        raise CliError(f"{where}: {report.reason}")
    if not as_json:
        render.stdout().print(
            f"ok: {report.heights_checked} heights, {report.tx_count} transactions verified "
            f"({report.governance_txs} governance, {report.proposals_executed} proposals "
            "executed, each replayed against the policy in force)"
        )
    return report

"""``tpledger cluster``: create and run a local cluster of validators."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

import click

from tpledger.cli import render
from tpledger.cli.options import CONTEXT, json_option

if TYPE_CHECKING:
    from tpledger.cli.cluster import NodeEvent


@click.group(context_settings=CONTEXT)
def cluster() -> None:
    """Create and run a local cluster of validators."""


@cluster.command("init",
                 epilog="Example: tpledger cluster init ./c --validators 4 --base-port 7000")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--validators", "-n", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Number of validators (federation, insurers, CNAM).")
@click.option("--base-port", type=click.IntRange(0, 65535), default=7000, show_default=True,
              help="Node i listens on BASE+i; 0 picks free ports.")
@click.option("--chain-id", default="tpledger-local", show_default=True, help="Chain id.")
@click.option("--tls", is_flag=True,
              help="Generate a consortium CA and node certificates (DIR/tls); nodes then speak "
                   "https to each other and to clients (export TPLEDGER_CA=DIR/tls/ca.crt).")
@json_option("Print the cluster description as JSON.")
def cluster_init(directory: Path, validators: int, base_port: int, chain_id: str,
                 tls: bool, as_json: bool) -> None:
    """Write keys, genesis.json, node configs and cluster.json into an empty DIRECTORY."""
    from tpledger.cli.cluster import CLUSTER_FILE, init_cluster

    info = init_cluster(directory, validators, base_port, chain_id, tls=tls)
    if as_json:
        click.echo((info.root / CLUSTER_FILE).read_text().strip())
        return
    render.cluster_summary(info, directory)


@cluster.command("up", epilog="Example: tpledger cluster up ./c   (Ctrl-C stops every node)")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--startup-timeout", type=click.FloatRange(1, 600), default=60, show_default=True,
              help="Seconds to wait for every node's /v1/status.")
def cluster_up(directory: Path, startup_timeout: float) -> None:
    """Run every node of DIRECTORY as a child process until Ctrl-C or SIGTERM.

    A node that exits is reported (exit code, last log line) and the others keep running;
    `tpledger cluster restart DIRECTORY NODE` (another terminal) starts it again."""
    from tpledger.cli.cluster import ClusterInfo, LocalCluster, Supervisor, up_pid_file

    ClusterInfo.load(directory)  # a clear error if this is not a cluster directory
    err = render.stderr()
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM,
                                                                      signal.SIGINT)}
    lc = LocalCluster(directory, startup_timeout_s=startup_timeout)
    try:
        with up_pid_file(lc.info.root), lc:
            for n in lc.info.nodes:
                click.echo(f"{n.name} {n.api}")
            err.print(f"{len(lc.info.nodes)} nodes up; logs in {lc.info.root / 'nodes'}; "
                      "Ctrl-C stops them")
            supervisor = Supervisor(lc)
            while True:
                for event in supervisor.poll():
                    err.print(_event_line(event, directory))
                time.sleep(0.2)
    except KeyboardInterrupt:
        err.print("stopping nodes…")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    err.print("all nodes stopped")


def _event_line(event: NodeEvent, directory: Path) -> str:
    if event.kind == "exited":
        return (f"node {event.name} stopped (exit code {event.code}; last log line: "
                f"{event.detail}); the other nodes keep running; "
                f"`tpledger cluster restart {directory} {event.name}` starts it again")
    if event.kind == "ignored":
        return f"node {event.name}: unknown control request {event.detail!r} ignored"
    if event.kind == "restarted":
        return f"node {event.name} restarted on request"
    return f"node {event.name} stopped on request (exit code {event.code})"


@cluster.command("restart", epilog="Example: tpledger cluster restart ./c v2")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("node_name", metavar="NODE")
@click.option("--timeout", "timeout_s", type=click.FloatRange(1, 600), default=60,
              show_default=True, help="Seconds to wait for the node's /v1/status.")
def cluster_restart(directory: Path, node_name: str, timeout_s: float) -> None:
    """Ask the running `cluster up` of DIRECTORY to (re)start NODE; wait until it answers."""
    from tpledger.cli.cluster import request_node_action, wait_node_answers

    info = request_node_action(directory, node_name, "restart", timeout_s)
    wait_node_answers(info, node_name, timeout_s)
    click.echo(f"{node_name} restarted")


@cluster.command("stop", epilog="Example: tpledger cluster stop ./c v2")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("node_name", metavar="NODE")
def cluster_stop(directory: Path, node_name: str) -> None:
    """Ask the running `cluster up` of DIRECTORY to stop NODE alone (the others keep going)."""
    from tpledger.cli.cluster import request_node_action

    request_node_action(directory, node_name, "stop")
    click.echo(f"{node_name} stopped")


def _raise_interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt

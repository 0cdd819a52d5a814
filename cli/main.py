"""``tpledger``: the command-line front of the ledger (a thin layer over ledger/ and node/).

This module only composes: the root group, the registration of every command group (one
module each under :mod:`cli.commands`) and :func:`run`, the one place exceptions become exit
codes. Exit codes: 0 success; 1 an error of input, environment, the ledger or a node (one line
``error: ...`` on stderr); 2 bad usage; 70 an unexpected internal error (traceback only with
``TPLEDGER_DEBUG=1``); 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

import click

from cli.client import ClientError
from cli.commands.audit import audit
from cli.commands.bench import bench
from cli.commands.checkpoint import checkpoint
from cli.commands.claim import claim
from cli.commands.cluster import cluster
from cli.commands.demo import demo
from cli.commands.evidence import evidence
from cli.commands.genesis import genesis
from cli.commands.keygen import keygen
from cli.commands.lpp import lpp
from cli.commands.node import node
from cli.commands.proof import proof
from cli.commands.stats import stats
from cli.commands.status import status
from cli.commands.witness import witness
from cli.errors import CliError, UsageError
from cli.options import CONTEXT
from cli.render import one_line
from ledger.errors import LedgerError
from node.errors import NodeError

COMMANDS: tuple[click.Command, ...] = (
    audit, bench, checkpoint, claim, cluster, demo, evidence, lpp, node, proof, stats, status,
    witness,
)
COMMANDS += (genesis, keygen)  # the genesis ceremony (cli/ceremony.py)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="tpledger", prog_name="tpledger")
def cli() -> None:
    """tpledger: a neutral, append-only ledger for optical tiers payant.

    \b
    Quick start:
      tpledger demo                      # whole flow on a throw-away local cluster
      tpledger cluster init ./c --validators 4 --base-port 7000
      tpledger cluster up ./c
    """


for _command in COMMANDS:
    cli.add_command(_command)


def _error(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing more to do
        click.echo(f"error: {one_line(message)}", err=True)


def _failed(message: str, debug: bool) -> int:
    """An expected failure: a one-line error (a traceback only when debugging), exit 1."""
    if debug:
        traceback.print_exc()
    _error(message)
    return 1


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code; the one place exceptions become exit codes."""
    debug = os.environ.get("TPLEDGER_DEBUG") == "1"
    try:
        rv = cli.main(args=argv, prog_name="tpledger", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        _error("interrupted")
        return 130
    except click.ClickException as exc:  # usage errors (exit 2) and friends
        exc.show()
        return exc.exit_code
    except UsageError as exc:
        _error(str(exc))
        return 2
    except (CliError, LedgerError, NodeError, ClientError) as exc:
        return _failed(str(exc), debug)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BrokenPipeError:
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _failed(f"{where}{exc.strerror or type(exc).__name__}", debug)
    except Exception as exc:
        # Never echo str(exc): an unexpected message could hold input data.
        if debug:
            traceback.print_exc()
        _error(f"internal error ({type(exc).__name__}); rerun with TPLEDGER_DEBUG=1 for details")
        return 70


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main()

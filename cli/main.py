"""``tpledger``: the command-line front of the ledger (a thin layer over ledger/ and node/).

This module only composes: the root group, the registration of every command group (one
module each under :mod:`cli.commands`) and :func:`run`, the one place exceptions become exit
codes (the table is :data:`cli.errors.EXIT_CODES`, printed by ``tpledger --help``). Every
error is one line ``error: ...`` on stderr; a traceback only with ``TPLEDGER_DEBUG=1``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

import click

from tpledger.cli.client import CA_FILE, ClientError
from tpledger.cli.commands.audit import audit
from tpledger.cli.commands.bench import bench
from tpledger.cli.commands.checkpoint import checkpoint
from tpledger.cli.commands.claim import claim
from tpledger.cli.commands.cluster import cluster
from tpledger.cli.commands.demo import demo
from tpledger.cli.commands.evidence import evidence
from tpledger.cli.commands.genesis import genesis
from tpledger.cli.commands.gov import gov
from tpledger.cli.commands.keygen import keygen
from tpledger.cli.commands.lpp import lpp
from tpledger.cli.commands.node import node
from tpledger.cli.commands.participant import participant
from tpledger.cli.commands.proof import proof
from tpledger.cli.commands.stats import stats
from tpledger.cli.commands.status import status
from tpledger.cli.commands.witness import witness
from tpledger.cli.errors import EXIT_CODES, CliError, Exit
from tpledger.cli.options import CONTEXT
from tpledger.cli.profile import select_profile
from tpledger.cli.render import one_line
from tpledger.ledger.errors import LedgerError
from tpledger.node.errors import NodeError

COMMANDS: tuple[click.Command, ...] = (
    audit, bench, checkpoint, claim, cluster, demo, evidence, lpp, node, proof, stats, status,
    witness,
)
COMMANDS += (genesis, keygen)  # the genesis ceremony (cli/ceremony.py)
COMMANDS += (gov,)  # governance: quorum proposals and ballots (issue 13)
COMMANDS += (participant,)  # the participant registry (cli/participants.py)


def _exit_code_epilog() -> str:
    rows = "\n".join(f"  {code:>3}  {what}" for code, what in EXIT_CODES)
    return f"\b\nExit codes:\n{rows}\n\nDefaults: flag > TPLEDGER_* environment > profile " \
           "file (~/.config/tpledger/config.toml; TPLEDGER_CONFIG) > built-in."


@click.group(context_settings=CONTEXT, epilog=_exit_code_epilog())
@click.option("--profile", envvar="TPLEDGER_PROFILE", metavar="NAME", is_eager=True,
              expose_value=False, callback=lambda ctx, _p, v: select_profile(ctx, v),
              help="Named [profiles.NAME] of the profile file (or TPLEDGER_PROFILE).")
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


def _failed(message: str, debug: bool, code: int = Exit.ERROR) -> int:
    """An expected failure: a one-line error (a traceback only when debugging)."""
    if debug:
        traceback.print_exc()
    _error(message)
    return int(code)


def _client_exit(exc: ClientError) -> int:
    """A node client's failure: unreachable (no answer, TLS), malformed id/URL, or an error."""
    if exc.status == 0 and exc.code in ("unreachable", "timeout", "tls"):
        return Exit.UNREACHABLE
    if exc.status == 0 and exc.code in ("bad_id", "bad_url"):
        return Exit.USAGE
    if exc.code in ("revoked_signer", "suspended_signer"):  # the registry refuses this key
        return Exit.REJECTED
    return Exit.ERROR


def _click_error(exc: click.ClickException) -> int:
    """click's errors in one line (its usage errors are three), with the --help to read."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        exc.show()
        return Exit.USAGE
    hint = ""
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        hint = f" (see '{exc.ctx.command_path} --help')"
    _error(exc.format_message() + hint)
    return exc.exit_code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code; the one place exceptions become exit codes."""
    debug = os.environ.get("TPLEDGER_DEBUG") == "1"
    CA_FILE.set(None)  # set again by --ca (or TPLEDGER_CA, the profile) of this command
    try:
        rv = cli.main(args=argv, prog_name="tpledger", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        _error("interrupted")
        return Exit.INTERRUPTED
    except click.ClickException as exc:  # usage errors (exit 2) and friends
        return _click_error(exc)
    except CliError as exc:
        return _failed(str(exc), debug and exc.exit_code != Exit.USAGE, exc.exit_code)
    except ClientError as exc:
        return _failed(str(exc), debug, _client_exit(exc))
    except (LedgerError, NodeError) as exc:
        return _failed(str(exc), debug)
    except KeyboardInterrupt:
        _error("interrupted")
        return Exit.INTERRUPTED
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BrokenPipeError:
        return Exit.ERROR
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _failed(f"{where}{exc.strerror or type(exc).__name__}", debug)
    except Exception as exc:
        # Never echo str(exc): an unexpected message could hold input data.
        if debug:
            traceback.print_exc()
        _error(f"internal error ({type(exc).__name__}); rerun with TPLEDGER_DEBUG=1 for details")
        return Exit.INTERNAL


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main()

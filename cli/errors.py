"""Errors the CLI raises and the exit codes they map to (``cli.main.run`` is the one mapping).

The exit codes are one table, :data:`EXIT_CODES` (printed in ``tpledger --help`` and the README):
scripts tell a refusal of the ledger from a timeout, a usage error, an unreachable node and a
proof that does not verify.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """Exit codes of ``tpledger`` (distinct, stable: scripts test them)."""

    OK = 0
    ERROR = 1  # any other error: input file, key, environment, a node's refusal to answer
    USAGE = 2  # bad usage or a malformed value (nothing was sent)
    FORK = 3  # the witness saw two valid certificates for one height
    REJECTED = 4  # the ledger refused a transaction (its code on stderr)
    TIMED_OUT = 5  # --wait: not committed before --timeout
    UNREACHABLE = 6  # no node answered (connection refused, timeout, TLS failure)
    INVALID_PROOF = 7  # a proof, checkpoint, consistency proof or opening does not verify
    INTERNAL = 70  # a bug: traceback with TPLEDGER_DEBUG=1
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODES: tuple[tuple[int, str], ...] = (
    (Exit.OK, "success"),
    (Exit.ERROR, "error (input file, key, configuration, a node's error answer)"),
    (Exit.USAGE, "usage error or malformed value; nothing was sent"),
    (Exit.FORK, "witness: a fork (two valid certificates for one height)"),
    (Exit.REJECTED, "rejected by the ledger (its refusal code on stderr)"),
    (Exit.TIMED_OUT, "timed out waiting (--wait) for the commit"),
    (Exit.UNREACHABLE, "node unreachable (connection, timeout, TLS verification)"),
    (Exit.INVALID_PROOF, "invalid proof: a proof, checkpoint or opening does not verify"),
    (Exit.INTERNAL, "internal error (rerun with TPLEDGER_DEBUG=1)"),
    (Exit.INTERRUPTED, "interrupted"),
)


class CliError(Exception):
    """Bad input or environment detected by the CLI itself (one line, no traceback)."""

    exit_code: Exit = Exit.ERROR


class UsageError(CliError):
    """Bad combination of options or a malformed value (exit 2)."""

    exit_code = Exit.USAGE


class Rejected(CliError):
    """The ledger refused a transaction."""

    exit_code = Exit.REJECTED


class TimedOut(CliError):
    """``--wait`` gave up before the commit."""

    exit_code = Exit.TIMED_OUT


class Unreachable(CliError):
    """No answer from the node."""

    exit_code = Exit.UNREACHABLE


class VerificationFailed(CliError):
    """A proof, checkpoint, consistency proof or opening does not verify."""

    exit_code = Exit.INVALID_PROOF

"""Files the CLI reads and writes, each bounded and each written atomically.

Every file from outside (a checkpoint, a consistency proof, a proof bundle, the witness state)
is read with a size bound before it is parsed; every file the CLI writes goes through a
fsynced temporary file and ``os.replace``, so that a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from tpledger.cli.errors import CliError
from tpledger.ledger.errors import LedgerError
from tpledger.ledger.proofs import Checkpoint, ConsistencyProof

MAX_CHECKPOINT_FILE_BYTES = Checkpoint.MAX_BYTES + 64
MAX_CONSISTENCY_FILE_BYTES = ConsistencyProof.MAX_BYTES + 64


def read_prefix(path: Path, max_bytes: int, what: str, *, allow_stdin: bool = False) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``path`` (``-`` is stdin when ``allow_stdin``): an
    oversize file is then refused by its parser. Raises CliError."""
    try:
        if allow_stdin and str(path) == "-":
            return sys.stdin.buffer.read(max_bytes + 1)
        with path.open("rb") as fh:
            return fh.read(max_bytes + 1)
    except OSError as exc:
        raise CliError(f"{path}: cannot read {what}: {exc.strerror}") from None


def read_bounded(path: Path, max_bytes: int, what: str) -> bytes:
    """Read at most ``max_bytes`` (+1, so that an oversize file is refused by its parser, or
    here). Raises CliError."""
    data = read_prefix(path, max_bytes, what)
    if len(data) > max_bytes:
        raise CliError(f"{path}: {what} larger than {max_bytes} bytes")
    return data


def read_checkpoint(path: Path) -> Checkpoint:
    """A checkpoint file (``TPLCKP1`` magic). Raises CliError."""
    data = read_bounded(path, MAX_CHECKPOINT_FILE_BYTES, "checkpoint")
    try:
        return Checkpoint.from_bytes(data)
    except LedgerError as exc:
        raise CliError(f"{path}: {exc}") from None


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable too
        dfd = os.open(path.parent or ".", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def read_consistency_proof(path: Path, old: Checkpoint, new: Checkpoint) -> ConsistencyProof:
    """A consistency proof file, which must be between ``old`` and ``new``. Raises CliError."""
    try:
        stored = ConsistencyProof.from_bytes(
            read_bounded(path, MAX_CONSISTENCY_FILE_BYTES, "consistency proof"))
    except LedgerError as exc:
        raise CliError(f"{path}: {exc}") from None
    if stored.old != old or stored.new != new:
        raise CliError(f"{path}: the proof is for other checkpoints")
    return stored


__all__ = [
    "MAX_CHECKPOINT_FILE_BYTES",
    "MAX_CONSISTENCY_FILE_BYTES",
    "read_bounded",
    "read_checkpoint",
    "read_consistency_proof",
    "read_prefix",
    "write_atomically",
]

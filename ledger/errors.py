"""One exception hierarchy for the ledger package.

Bad input (from a client, a peer, a file, a disk) raises a subclass of ``LedgerError`` with a
message that never echoes personal data. A broken invariant of our own code is not a
``LedgerError``: it raises ``AssertionError``/``RuntimeError`` and stops the process.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every error the ledger package raises for bad input."""


class EncodingError(LedgerError):
    """Bytes that are not the one canonical encoding of a known object."""


class KeyFileError(LedgerError):
    """A key file that is missing, malformed or readable by group/world."""


class SignatureError(LedgerError):
    """A signature that does not verify."""


class GenesisError(LedgerError):
    """A genesis file that is malformed or inconsistent."""


class RuleError(LedgerError):
    """A transaction rejected by the ledger rules; ``code`` is stable and machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class DuplicateReference(RuleError):
    """``duplicate_reference``: the optician already has a claim with this client reference on
    the ledger; ``existing_claim_id`` is that first claim's id (not personal data)."""

    def __init__(self, existing_claim_id: bytes) -> None:
        super().__init__("duplicate_reference", "this optician already has a claim with this "
                         f"reference: claim {existing_claim_id.hex()}")
        self.existing_claim_id = existing_claim_id


class PatientDataError(LedgerError):
    """Invalid patient identity input. Messages never contain the input itself."""


class StoreError(LedgerError):
    """The LMDB store is missing, corrupt, or asked for something it does not hold."""


class StoreCorruption(StoreError):
    """A stored row whose checksum does not match: the disk damaged it. Names the table and
    the key (never the value); the cure is to resync the node (docs/operations.md)."""

    def __init__(self, table: str, key: bytes) -> None:
        self.table = table
        self.key_hex = bytes(key).hex()
        super().__init__(
            f"store damaged at {table}/{self.key_hex}: resync this node (docs/operations.md)")


class ProofError(LedgerError):
    """A proof bundle or checkpoint that is malformed."""

"""Offline proofs: inclusion bundles, checkpoints and consistency proofs.

A :class:`ProofBundle` lets anyone holding only the genesis file check that a transaction (a
claim, a decision, a payment, a cancel, a governance tx, vote evidence) is in the ledger and
that its signer could sign it: the signed transaction, its RFC 9162 inclusion path up to a
block header's ``tree_root``, the quorum certificate over that header, and the signer's leaf
of the participant registry with its path up to the header's ``registry_root`` (the registry
in force during that block). :func:`verify_bundle` needs nothing else (from the genesis: the
chain id and the validator keys) and never raises: every failure comes back as a
:class:`VerificationResult` naming the check that failed (``failure_code``):

``decode``        the bytes are not a well-formed bundle / transaction
``chain``         the header is for another chain id
``header``        header inconsistent with this chain (proposer)
``inclusion``     the Merkle path does not lead from the transaction to ``header.tree_root``
``tx_signature``  the transaction signature does not verify
``registry``      the signer's record is not the leaf at its slot under ``header.registry_root``
``participant``   the signer may not sign this tx: no record, a record of another key, or a
                  role (an org, for an admin) that may not sign this kind (vote evidence: not
                  a validator of the genesis; ``ledger.rules.evidence_signer``)
``revoked``       the signer's record was not ACTIVE in the registry in force at that height
``evidence``      vote evidence that proves no equivocation (``ledger.rules.check_vote_evidence``)
``certificate``   the certificate is not a valid quorum of precommits over ``header.hash()``
``consistency``   (consistency proofs) the new log does not extend the old one

A bundle is built by default against the tx's own block (``Store.proof``): the store keeps the
registry's history, so the bundle of a claim signed before a later rotation or revocation of
its signer still verifies; against a later header the same claim carries the later (revoked)
leaf and fails ``revoked``.

The structure follows sigstore-python's ``verify/verifier.py``: small typed steps, each raising
a private :class:`_Failure` caught in one place and turned into a result.

Bundle size (version 2), for a log of 10^9 leaves (``ceil(log2(1e9)) = 30`` path hashes) and a
registry of 100,020 slots (100,000 participants and 20 orgs: 17 path hashes), a 3-of-4
certificate and a two-line claim, in bytes, as measured (and pinned) by
``tests/ledger/test_registry_proofs.py::test_bundle_size_at_1e9_and_100k``:

=========================================  =====
magic file prefix                              8
envelope (array, tag, version)                 3
transaction (two-line claim, 16-char org)    357
leaf_index (uint32)                            5
path: 30 x 32 packed in one bin field        963
header (11 fields, 13-char chain id)         212
certificate round + 3 x (validator, sig)     212
signer record (optician with RPPS, SIRET)    152
signer path: 17 x 32 in one bin field        547
=========================================  =====

Total 2,459 bytes (the issue's goal: 2,500). Version 1 also carried the chain id, the genesis
hash and the tree size (the header has them) and the certificate's height and block hash (the
header's): version 2 drops them (about 90 bytes), which pays for most of the signer's record.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from tpledger.ledger.blocks import Header
from tpledger.ledger.encoding import (
    U32,
    U64,
    HashList,
    ListOf,
    Nested,
    R,
    Record,
    VarBytes,
    spec,
)
from tpledger.ledger.errors import EncodingError, LedgerError, ProofError, RuleError
from tpledger.ledger.genesis import ACTIVE, Genesis
from tpledger.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from tpledger.ledger.registry import OrgRecord, ParticipantRecord, decode_leaf, leaf_key
from tpledger.ledger.rules import TxKind, check_vote_evidence, evidence_signer, tx_kind
from tpledger.ledger.tx import (
    ROTATE,
    ParticipantAdd,
    ParticipantChange,
    SignedTx,
    TxBody,
    VoteEvidence,
)
from tpledger.ledger.validity import BlockInvalid, check_certificate, check_chain, check_proposer
from tpledger.ledger.votes import MAX_VALIDATORS, CertSignature, CommitCertificate

BUNDLE_MAGIC = b"TPLPRF2\n"  # file prefix of a proof bundle (8 bytes)
OLD_BUNDLE_MAGIC = b"TPLPRF1\n"  # version 1, before the participant registry
CHECKPOINT_MAGIC = b"TPLCKP1\n"
CONSISTENCY_MAGIC = b"TPLCNS1\n"
MAX_PATH_HASHES = 64  # inclusion paths for trees of up to 2^64 leaves
MAX_CONSISTENCY_HASHES = 130  # RFC 9162 consistency paths are at most ~2*log2(n)
MAX_REGISTRY_PATH_HASHES = 32  # the registry tree has at most 2^32 slots
MAX_SIGNER_RECORD_BYTES = 512
# A certificate holds at most MAX_VALIDATORS signatures of ~70 bytes each.
_CERT_MAX_BYTES = 64 + MAX_VALIDATORS * 72
MAX_BUNDLE_BYTES = (SignedTx.MAX_BYTES + Header.MAX_BYTES + _CERT_MAX_BYTES
                    + 40 * (MAX_PATH_HASHES + MAX_REGISTRY_PATH_HASHES)
                    + MAX_SIGNER_RECORD_BYTES)
MAX_BUNDLE_FILE_BYTES = MAX_BUNDLE_BYTES + len(BUNDLE_MAGIC)

DECODE = "decode"
CHAIN = "chain"
HEADER = "header"
INCLUSION = "inclusion"
TX_SIGNATURE = "tx_signature"
PARTICIPANT = "participant"
EVIDENCE = "evidence"
CERTIFICATE = "certificate"
CONSISTENCY = "consistency"
REGISTRY = "registry"
REVOKED = "revoked"
INTERNAL = "internal"


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class ProofBundle(Record):
    """Everything needed to check offline that ``tx`` is in the ledger (see module doc).

    Version 2 (issue 13): the signer's registry leaf (``signer_record``, the encoded
    ``ParticipantRecord``/``OrgRecord``; empty for validator-signed evidence) with its path
    (``signer_path``) to ``header.registry_root``; the slot is the record's own ``slot``. The
    version-1 ``chain_id``, ``genesis_hash`` and ``tree_size`` fields are gone (the header
    carries the chain id and the tree size, and the certificate, checked against the genesis
    validators, is what binds the bundle to the chain), and so are the certificate's height
    and block hash: they are the header's (``certificate`` rebuilds the certificate). Build
    one with :meth:`of`."""

    TAG: ClassVar[int] = 0x60
    VERSION: ClassVar[int] = 2
    MAX_BYTES: ClassVar[int] = MAX_BUNDLE_BYTES
    tx: bytes = spec(VarBytes(SignedTx.MAX_BYTES, 1))
    leaf_index: int = spec(U64)
    path: tuple[bytes, ...] = spec(HashList(MAX_PATH_HASHES))
    header: Header = spec(Nested(Header))
    cert_round: int = spec(U32)
    cert_signatures: tuple[CertSignature, ...] = spec(
        ListOf(Nested(CertSignature), MAX_VALIDATORS, 1))
    signer_record: bytes = spec(VarBytes(MAX_SIGNER_RECORD_BYTES, 0))
    signer_path: tuple[bytes, ...] = spec(HashList(MAX_REGISTRY_PATH_HASHES))

    @classmethod
    def of(cls, *, tx: bytes, leaf_index: int, path: Sequence[bytes], header: Header,
           certificate: CommitCertificate, signer_record: bytes = b"",
           signer_path: Sequence[bytes] = ()) -> ProofBundle:
        """A bundle from a header and its certificate. Only the certificate's round and
        signatures are kept: a certificate of another header gives a bundle that fails
        ``certificate``."""
        return cls(tx, leaf_index, tuple(path), header, certificate.round,
                   certificate.signatures, signer_record, tuple(signer_path))

    @property
    def certificate(self) -> CommitCertificate:
        """The certificate over ``header`` (its height and hash are the header's)."""
        return CommitCertificate(self.header.height, self.cert_round, self.header.hash(),
                                 self.cert_signatures)

    @property
    def chain_id(self) -> str:
        return self.header.chain_id

    @property
    def tree_size(self) -> int:
        return self.header.tree_size

    def to_bytes(self) -> bytes:
        """The file form: ``BUNDLE_MAGIC`` followed by the canonical encoding."""
        return BUNDLE_MAGIC + self.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ProofBundle:
        """Parse the file form (the magic prefix is required). Raises :class:`ProofError`."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ProofError("proof bundle: input is not bytes")
        data = bytes(data)
        if len(data) > MAX_BUNDLE_FILE_BYTES:
            raise ProofError(f"proof bundle: {len(data)} bytes exceeds {MAX_BUNDLE_FILE_BYTES}")
        if data.startswith(OLD_BUNDLE_MAGIC):
            raise ProofError("proof bundle: a version-1 bundle (from before the participant "
                             "registry); fetch the proof again")
        if not data.startswith(BUNDLE_MAGIC):
            raise ProofError("proof bundle: missing magic prefix (not a tpledger proof file)")
        try:
            return cls.decode(data[len(BUNDLE_MAGIC):])
        except EncodingError as exc:
            raise ProofError(f"proof bundle: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """Human-readable export (hex strings); the binary file is the normative form."""
        return {
            "kind": "tpledger-proof",
            "version": self.VERSION,
            "chain_id": self.chain_id,
            "tx": self.tx.hex(),
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "path": [h.hex() for h in self.path],
            "header": _header_json(self.header),
            "header_hash": self.header.hash().hex(),
            "certificate": _cert_json(self.certificate),
            "signer_record": self.signer_record.hex(),
            "signer_path": [h.hex() for h in self.signer_path],
        }


@dataclass(frozen=True)
class Checkpoint(Record):
    """A certified header: the log's size and root at one height, signed by a quorum."""

    TAG: ClassVar[int] = 0x61
    MAX_BYTES: ClassVar[int] = Header.MAX_BYTES + _CERT_MAX_BYTES + 16
    header: Header = spec(Nested(Header))
    certificate: CommitCertificate = spec(Nested(CommitCertificate))

    @property
    def height(self) -> int:
        return self.header.height

    def to_bytes(self) -> bytes:
        """File/wire form: ``CHECKPOINT_MAGIC`` + canonical encoding."""
        return CHECKPOINT_MAGIC + self.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        return _from_magic_bytes(cls, CHECKPOINT_MAGIC, data, "checkpoint")

    @property
    def tree_size(self) -> int:
        return self.header.tree_size

    @property
    def tree_root(self) -> bytes:
        return self.header.tree_root


@dataclass(frozen=True)
class ConsistencyProof(Record):
    """Proof that the log at ``new`` extends the log at ``old`` (RFC 9162 §2.1.4)."""

    TAG: ClassVar[int] = 0x62
    MAX_BYTES: ClassVar[int] = 2 * Checkpoint.MAX_BYTES + 40 * MAX_CONSISTENCY_HASHES
    old: Checkpoint = spec(Nested(Checkpoint))
    new: Checkpoint = spec(Nested(Checkpoint))
    path: tuple[bytes, ...] = spec(HashList(MAX_CONSISTENCY_HASHES))

    def to_bytes(self) -> bytes:
        """File/wire form: ``CONSISTENCY_MAGIC`` + canonical encoding."""
        return CONSISTENCY_MAGIC + self.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ConsistencyProof:
        return _from_magic_bytes(cls, CONSISTENCY_MAGIC, data, "consistency proof")


def _from_magic_bytes(cls: type[R], magic: bytes, data: bytes, what: str) -> R:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProofError(f"{what}: input is not bytes")
    data = bytes(data)
    if len(data) > cls.MAX_BYTES + len(magic):
        raise ProofError(f"{what}: {len(data)} bytes is too large")
    if not data.startswith(magic):
        raise ProofError(f"{what}: missing magic prefix")
    try:
        return cls.decode(data[len(magic):])
    except EncodingError as exc:
        raise ProofError(f"{what}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of a verification. ``failure_code`` is None iff ``ok``; messages hold no PII."""

    ok: bool
    failure_code: str | None = None
    message: str = ""
    claim_id: bytes | None = None
    tx_id: bytes | None = None
    tx_type: str | None = None
    signer_org: str | None = None
    signer_role: str | None = None  # "admin" for an org's admin, "validator" for evidence
    signer_ids: dict[str, str] | None = None  # a participant's professional identifiers
    height: int | None = None
    tree_size: int | None = None
    leaf_index: int | None = None
    time_ms: int | None = None

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class _Signer:
    org: str
    role: str
    ids: dict[str, str] | None


class _Failure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------------------------
# Verifier


def _kind_of(body: object) -> TxKind:
    """The rules' table entry of this body (``ledger.rules.TX_KINDS``): a kind the rules do not
    know is refused here too."""
    try:
        return tx_kind(body)
    except RuleError as exc:
        raise _Failure(PARTICIPANT, exc.message) from None


def _check_signer_role(role: str, org: str, body: object) -> None:
    """The part of the rules a proof can check alone: who may sign which kind of tx (the
    rules' table, ``TxKind.may_sign``)."""
    if not _kind_of(body).may_sign(body, role, org):
        raise _Failure(PARTICIPANT, f"a {role} may not sign this {type(body).__name__.lower()}")


def _require_active(rec: ParticipantRecord | OrgRecord, height: int) -> None:
    """A tx of block h is valid only if its signer's leaf in the registry in force then is
    ACTIVE: a key revoked (or suspended) before the block fails here, offline."""
    if rec.status != ACTIVE:
        raise _Failure(REVOKED, "the signer's key was not active in the registry in force at "
                                f"height {height}")


def _admin_may_sign(kind: TxKind, body: object, org: str) -> bool:
    """What a proof can check alone of an admin signer: the kind is admin-signed, and a
    ``ParticipantAdd`` names the admin's own org (the rest needs the state the validators
    checked: the changed participant's org, the policy)."""
    if kind.signer_kind != "admin":
        return False
    return not isinstance(body, ParticipantAdd) or body.gov_org == org


def _self_may_sign(body: object, org: str) -> bool:
    """A participant signs an admin-kind tx only to rotate its own keys."""
    return isinstance(body, ParticipantChange) and body.op == ROTATE and body.org == org


class Verifier:
    """Verifies bundles, checkpoints and consistency proofs against one genesis.

    It needs the genesis only for the chain id and the validator keys: every other signer is
    proven by its registry leaf against the header (``registry_root``), so participants and
    admins added or rotated after the genesis verify too; :func:`verify_bundle` keeps one
    verifier per genesis object.
    """

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.validator_keys = genesis.validator_keys
        self._validator_index = {k: i for i, k in enumerate(self.validator_keys)}

    # -- public ------------------------------------------------------------------------------
    def verify_bundle(self, bundle: ProofBundle | bytes) -> VerificationResult:
        """Check a bundle (object or file bytes) completely. Never raises."""
        try:
            return self._verify_bundle(bundle)
        except _Failure as f:
            return VerificationResult(False, f.code, f.message)
        except Exception as exc:  # a bug of ours, not bad input; still never raise
            return VerificationResult(False, INTERNAL, f"verifier error: {type(exc).__name__}")

    def verify_checkpoint(self, checkpoint: Checkpoint | bytes) -> VerificationResult:
        """Check that a checkpoint's header is certified by a quorum of this chain."""
        try:
            cp = checkpoint if isinstance(checkpoint, Checkpoint) else _decode_magic(
                Checkpoint, CHECKPOINT_MAGIC, checkpoint, "checkpoint"
            )
            self._check_checkpoint(cp)
            return VerificationResult(
                True, None, "checkpoint verified", height=cp.height, tree_size=cp.tree_size,
                time_ms=cp.header.time_ms,
            )
        except _Failure as f:
            return VerificationResult(False, f.code, f.message)
        except Exception as exc:
            return VerificationResult(False, INTERNAL, f"verifier error: {type(exc).__name__}")

    def verify_consistency_proof(self, proof: ConsistencyProof | bytes) -> VerificationResult:
        """Check both checkpoints and that the new log extends the old one."""
        try:
            p = proof if isinstance(proof, ConsistencyProof) else _decode_magic(
                ConsistencyProof, CONSISTENCY_MAGIC, proof, "consistency proof"
            )
            self._check_checkpoint(p.old)
            self._check_checkpoint(p.new)
            old, new = p.old.header, p.new.header
            if old.height > new.height:
                raise _Failure(CONSISTENCY, "old checkpoint is higher than the new one")
            if old.tree_size > new.tree_size:
                raise _Failure(CONSISTENCY, "old tree is larger than the new one")
            if old.height == new.height and old != new:
                raise _Failure(CONSISTENCY, "two different certified headers at one height")
            if not _consistent(old.tree_size, new.tree_size, old.tree_root, new.tree_root,
                               list(p.path)):
                raise _Failure(CONSISTENCY, "consistency path does not link the two tree roots")
            return VerificationResult(
                True, None, f"log at height {new.height} extends the log at height {old.height}",
                height=new.height, tree_size=new.tree_size, time_ms=new.time_ms,
            )
        except _Failure as f:
            return VerificationResult(False, f.code, f.message)
        except Exception as exc:
            return VerificationResult(False, INTERNAL, f"verifier error: {type(exc).__name__}")

    # -- steps -------------------------------------------------------------------------------
    def _verify_bundle(self, bundle: ProofBundle | bytes) -> VerificationResult:
        b = bundle if isinstance(bundle, ProofBundle) else self._decode_bundle(bundle)
        stx = _decode(SignedTx, b.tx, "transaction")
        try:
            body = stx.parse()
        except LedgerError as exc:
            raise _Failure(DECODE, f"transaction body: {exc}") from None
        tx_id = stx.tx_id()
        if b.header.chain_id != self.chain_id:
            raise _Failure(CHAIN, "bundle is for another chain id")
        self._check_header(b.header)
        self._check_inclusion(b)
        if not stx.verify(self.chain_id):
            raise _Failure(TX_SIGNATURE, "transaction signature does not verify")
        kind = _kind_of(body)
        signer = self._check_signer(stx, body, b)
        self._check_certificate(b.header, b.certificate)
        return VerificationResult(
            True,
            None,
            f"{kind.name} is leaf {b.leaf_index} of the log of size "
            f"{b.tree_size} certified at height {b.header.height}",
            claim_id=kind.claim_id_of(body, tx_id),
            tx_id=tx_id,
            tx_type=kind.name,
            signer_org=signer.org,
            signer_role=signer.role,
            signer_ids=signer.ids,
            height=b.header.height,
            tree_size=b.tree_size,
            leaf_index=b.leaf_index,
            time_ms=b.header.time_ms,
        )

    def _check_signer(self, stx: SignedTx, body: TxBody, b: ProofBundle) -> _Signer:
        """The signer may sign this tx. Vote evidence goes through the rules' own validator
        rule and stateless check; every other signer through its registry leaf at this
        height (``_registry_record``): the record names the signing key, is ACTIVE, and its
        role (or its org, for an admin) may sign this body."""
        kind = _kind_of(body)
        if kind.signer_kind == "validator":
            return self._check_validator(stx, body, b)
        rec = self._registry_record(b)
        if leaf_key(rec) != stx.signer:
            raise _Failure(PARTICIPANT, "the registry record is not the signer's")
        _require_active(rec, b.header.height)
        if isinstance(rec, OrgRecord):
            if not _admin_may_sign(kind, body, rec.name):
                raise _Failure(PARTICIPANT, f"the admin of {rec.name} may not sign this "
                                            f"{kind.name}")
            return _Signer(rec.name, "admin", None)
        if kind.signer_kind == "participant":
            _check_signer_role(rec.role, rec.org, body)
        elif not _self_may_sign(body, rec.org):
            raise _Failure(PARTICIPANT, f"a {rec.role} may not sign this {kind.name}")
        return _Signer(rec.org, rec.role, rec.ids.as_dict())  # public, never a patient's

    def _check_validator(self, stx: SignedTx, body: TxBody, b: ProofBundle) -> _Signer:
        if b.signer_record or b.signer_path:
            raise _Failure(PARTICIPANT, "a validator-signed tx carries no registry record")
        try:
            index = evidence_signer(self._validator_index, False, stx.signer)
            if isinstance(body, VoteEvidence):  # its stateless part: an equivocation
                check_vote_evidence(self.chain_id, self.validator_keys, body)
        except RuleError as exc:
            code = EVIDENCE if exc.code == "bad_evidence" else PARTICIPANT
            raise _Failure(code, exc.message) from None
        return _Signer(self.genesis.validators[index].name, "validator", None)

    @staticmethod
    def _registry_record(b: ProofBundle) -> ParticipantRecord | OrgRecord:
        """The bundle's signer record, proven to be the leaf at its slot of the registry the
        header commits to (``registry_root``/``registry_size``)."""
        if not b.signer_record:
            raise _Failure(PARTICIPANT, "the bundle carries no registry record of the signer")
        try:
            rec = decode_leaf(b.signer_record)
        except LedgerError as exc:
            raise _Failure(PARTICIPANT, f"signer record: {exc}") from None
        h = b.header
        if not (rec.slot < h.registry_size and verify_inclusion(
                leaf_hash(b.signer_record), rec.slot, h.registry_size, list(b.signer_path),
                h.registry_root)):
            raise _Failure(REGISTRY, "the signer record is not in the registry the header "
                                     f"commits to at height {h.height}")
        return rec

    def _decode_bundle(self, data: bytes) -> ProofBundle:
        try:
            return ProofBundle.from_bytes(data)
        except LedgerError as exc:
            raise _Failure(DECODE, str(exc)) from None

    def _check_header(self, header: Header) -> None:
        try:
            check_chain(header, self.chain_id)
            check_proposer(header, len(self.validator_keys))
        except BlockInvalid as exc:
            raise _Failure(HEADER, str(exc)) from None

    def _check_inclusion(self, b: ProofBundle) -> None:
        if b.leaf_index >= b.tree_size:
            raise _Failure(INCLUSION, "leaf index is outside the tree")
        ok = verify_inclusion(leaf_hash(b.tx), b.leaf_index, b.tree_size, list(b.path),
                              b.header.tree_root)
        if not ok:
            raise _Failure(INCLUSION, "inclusion path does not lead to the header's tree root")

    def _check_certificate(self, header: Header, cert: CommitCertificate) -> None:
        try:
            check_certificate(header, cert, self.chain_id, self.validator_keys)
        except BlockInvalid as exc:
            raise _Failure(CERTIFICATE, str(exc)) from None

    def _check_checkpoint(self, cp: Checkpoint) -> None:
        self._check_header(cp.header)
        self._check_certificate(cp.header, cp.certificate)


def _decode(cls: type[Any], data: bytes, what: str) -> Any:
    try:
        return cls.decode(data)
    except LedgerError as exc:
        raise _Failure(DECODE, f"{what}: {exc}") from None


def _decode_magic(cls: type[Any], magic: bytes, data: bytes, what: str) -> Any:
    """Bytes with the magic prefix (file form) or the bare canonical encoding."""
    if isinstance(data, bytes) and data.startswith(magic):
        data = data[len(magic):]
    return _decode(cls, data, what)


def _consistent(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                path: list[bytes]) -> bool:
    if old_size == 0:
        return not path  # the empty log is a prefix of every log
    if old_size == new_size:
        return not path and old_root == new_root
    return bool(verify_consistency(old_size, new_size, old_root, new_root, path))


def _header_json(h: Header) -> dict[str, Any]:
    return {
        "chain_id": h.chain_id,
        "height": h.height,
        "prev_hash": h.prev_hash.hex(),
        "time_ms": h.time_ms,
        "proposer": h.proposer,
        "tree_size": h.tree_size,
        "tree_root": h.tree_root.hex(),
        "txs_root": h.txs_root.hex(),
        "state_digest": h.state_digest.hex(),
    }


def _cert_json(c: CommitCertificate) -> dict[str, Any]:
    return {
        "height": c.height,
        "round": c.round,
        "block_hash": c.block_hash.hex(),
        "signatures": [{"validator": s.validator, "signature": s.signature.hex()}
                       for s in c.signatures],
    }


# ---------------------------------------------------------------------------------------------
# Function API (one cached Verifier per genesis object)

_VERIFIERS: dict[int, tuple[weakref.ref[Genesis], Verifier]] = {}


def verifier_for(genesis: Genesis) -> Verifier:
    """The cached :class:`Verifier` of this genesis object."""
    entry = _VERIFIERS.get(id(genesis))
    if entry is not None and entry[0]() is genesis:
        return entry[1]
    v = Verifier(genesis)
    if len(_VERIFIERS) > 64:
        _VERIFIERS.clear()
    _VERIFIERS[id(genesis)] = (weakref.ref(genesis), v)
    return v


def verify_bundle(bundle: ProofBundle | bytes, genesis: Genesis) -> VerificationResult:
    """Verify a proof bundle (object or file bytes) against a genesis. Never raises."""
    try:
        v = verifier_for(genesis)
    except Exception as exc:
        return VerificationResult(False, INTERNAL, f"bad genesis: {type(exc).__name__}")
    return v.verify_bundle(bundle)


def verify_checkpoint(checkpoint: Checkpoint | bytes, genesis: Genesis) -> VerificationResult:
    """Verify that a checkpoint is certified by a quorum of the genesis validators."""
    return verifier_for(genesis).verify_checkpoint(checkpoint)


def verify_consistency_proof(
    proof: ConsistencyProof | bytes, genesis: Genesis
) -> VerificationResult:
    """Verify that the log at ``proof.new`` extends the log at ``proof.old``. Never raises."""
    return verifier_for(genesis).verify_consistency_proof(proof)


__all__ = [
    "BUNDLE_MAGIC",
    "CERTIFICATE",
    "CHAIN",
    "CHECKPOINT_MAGIC",
    "CONSISTENCY",
    "CONSISTENCY_MAGIC",
    "DECODE",
    "HEADER",
    "INCLUSION",
    "PARTICIPANT",
    "REGISTRY",
    "REVOKED",
    "TX_SIGNATURE",
    "Checkpoint",
    "ConsistencyProof",
    "ProofBundle",
    "VerificationResult",
    "Verifier",
    "verifier_for",
    "verify_bundle",
    "verify_checkpoint",
    "verify_consistency_proof",
]

"""Merkle tree hashing, proofs and verifiers of RFC 9162 section 2.1 (Certificate Transparency).

Everything here is a pure function over ``bytes``:

* ``leaf_hash(e) = SHA-256(0x00 || e)``, ``node_hash(l, r) = SHA-256(0x01 || l || r)``
  (RFC 9162 §2.1.1); the root of the empty tree is ``SHA-256("")``.
* :func:`root_of`, :func:`inclusion_path` (``PATH``, §2.1.3.1) and :func:`consistency_path`
  (``PROOF``/``SUBPROOF``, §2.1.4.1) are the deliberately simple recursive definitions of the
  RFC, on a full list of entries. They are the reference that ``ledger.merkle_tree`` (the
  persistent, O(log n) tree) is tested against. The ``*_from_leaf_hashes`` variants take leaf
  hashes instead of entries.
* :func:`verify_inclusion` (§2.1.3.2) and :func:`verify_consistency` (§2.1.4.2) return ``False``
  on any malformed input and never raise.

Tree sizes are limited to ``MAX_TREE_SIZE`` (2**63 - 1), so no valid path has more than
``MAX_PATH_LEN`` (64) elements.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from tpledger.ledger.errors import ProofError

HASH_LEN = 32
MAX_TREE_SIZE = 2**63 - 1
MAX_PATH_LEN = 64
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || entry)."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


# ---------------------------------------------------------------------------------------------
# Reference (recursive) definitions over a list of leaf hashes


def _check_hashes(leaf_hashes: Sequence[bytes]) -> None:
    if len(leaf_hashes) > MAX_TREE_SIZE:
        raise ProofError("tree too large")
    for h in leaf_hashes:
        if not isinstance(h, bytes) or len(h) != HASH_LEN:
            raise ProofError("leaf hashes must be 32-byte bytes")


def _mth(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for a non-empty range."""
    n = hi - lo
    if n == 1:
        return hashes[lo]
    k = split_point(n)
    return node_hash(_mth(hashes, lo, lo + k), _mth(hashes, lo + k, hi))


def _path(m: int, hashes: Sequence[bytes], lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]) of RFC 9162 §2.1.3.1 (``m`` relative to ``lo``)."""
    n = hi - lo
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return [*_path(m, hashes, lo, lo + k), _mth(hashes, lo + k, hi)]
    return [*_path(m - k, hashes, lo + k, hi), _mth(hashes, lo, lo + k)]


def _subproof(m: int, hashes: Sequence[bytes], lo: int, hi: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], b) of RFC 9162 §2.1.4.1 (``m`` relative to ``lo``)."""
    n = hi - lo
    if m == n:
        return [] if b else [_mth(hashes, lo, hi)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(m, hashes, lo, lo + k, b), _mth(hashes, lo + k, hi)]
    return [*_subproof(m - k, hashes, lo + k, hi, False), _mth(hashes, lo, lo + k)]


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes; ``EMPTY_ROOT`` for an empty list."""
    _check_hashes(leaf_hashes)
    if not leaf_hashes:
        return EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def inclusion_path_from_leaf_hashes(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[0:n]); raises ``ProofError`` unless ``0 <= index < n``."""
    _check_hashes(leaf_hashes)
    if isinstance(index, bool) or not isinstance(index, int):
        raise ProofError("index must be an integer")
    if not 0 <= index < len(leaf_hashes):
        raise ProofError("leaf index out of range")
    return _path(index, leaf_hashes, 0, len(leaf_hashes))


def consistency_path_from_leaf_hashes(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:n]); empty when ``old_size`` is 0 or n. Raises ``ProofError``."""
    _check_hashes(leaf_hashes)
    if isinstance(old_size, bool) or not isinstance(old_size, int):
        raise ProofError("old size must be an integer")
    n = len(leaf_hashes)
    if not 0 <= old_size <= n:
        raise ProofError("old size out of range")
    if old_size in (0, n):
        return []
    return _subproof(old_size, leaf_hashes, 0, n, True)


def _leaf_hashes(entries: Sequence[bytes]) -> list[bytes]:
    out = []
    for e in entries:
        if not isinstance(e, bytes):
            raise ProofError("entries must be bytes")
        out.append(_sha256(b"\x00" + e).digest())
    return out


def root_of(entries: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash of a list of entries (RFC 9162 §2.1.1)."""
    return root_from_leaf_hashes(_leaf_hashes(entries))


def inclusion_path(entries: Sequence[bytes], index: int) -> list[bytes]:
    """Inclusion path of ``entries[index]`` in the tree of all ``entries`` (§2.1.3.1)."""
    return inclusion_path_from_leaf_hashes(_leaf_hashes(entries), index)


def consistency_path(entries: Sequence[bytes], old_size: int) -> list[bytes]:
    """Consistency path from the tree of ``entries[:old_size]`` to that of all ``entries``."""
    return consistency_path_from_leaf_hashes(_leaf_hashes(entries), old_size)


# ---------------------------------------------------------------------------------------------
# Verifiers (never raise)


def _is_size(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_TREE_SIZE


def _is_hash(x: object) -> bool:
    return isinstance(x, bytes) and len(x) == HASH_LEN


def _is_path(path: object) -> bool:
    return (
        isinstance(path, (list, tuple))
        and len(path) <= MAX_PATH_LEN
        and all(_is_hash(p) for p in path)
    )


def root_from_inclusion_path(
    leaf_hash: bytes, index: int, size: int, path: Sequence[bytes]
) -> bytes | None:
    """The root an inclusion path implies (RFC 9162 §2.1.3.2), or ``None`` if malformed."""
    try:
        if not (_is_hash(leaf_hash) and _is_size(index) and _is_size(size) and _is_path(path)):
            return None
        if index >= size:
            return None
        fn, sn, r = index, size - 1, leaf_hash
        for p in path:
            if sn == 0:
                return None
            if fn & 1 or fn == sn:
                r = _sha256(b"\x01" + p + r).digest()
                if not fn & 1:
                    while fn and not fn & 1:
                        fn >>= 1
                        sn >>= 1
            else:
                r = _sha256(b"\x01" + r + p).digest()
            fn >>= 1
            sn >>= 1
        if sn != 0:
            return None
        return r
    except Exception:  # pragma: no cover - defensive: verifiers never raise
        return None


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """True iff ``path`` proves leaf ``index`` has ``leaf_hash`` in the tree ``(size, root)``."""
    if not _is_hash(root):
        return False
    r = root_from_inclusion_path(leaf_hash, index, size, path)
    return r is not None and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> bool:
    """True iff ``path`` proves tree ``(old_size, old_root)`` is a prefix of ``(new_size, ...)``.

    RFC 9162 §2.1.4.2; sizes 0 and ``old_size == new_size`` take an empty path.
    """
    try:
        if not (
            _is_size(old_size)
            and _is_size(new_size)
            and _is_hash(old_root)
            and _is_hash(new_root)
            and _is_path(path)
        ):
            return False
        if old_size > new_size:
            return False
        if old_size == new_size:
            return len(path) == 0 and old_root == new_root
        if old_size == 0:
            return len(path) == 0 and old_root == EMPTY_ROOT
        if len(path) == 0:
            return False
        proof = list(path)
        if old_size & (old_size - 1) == 0:  # exact power of two: old root is the first node
            proof.insert(0, old_root)
            if len(proof) > MAX_PATH_LEN:
                return False
        fn, sn = old_size - 1, new_size - 1
        while fn & 1:
            fn >>= 1
            sn >>= 1
        fr = sr = proof[0]
        for c in proof[1:]:
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                fr = _sha256(b"\x01" + c + fr).digest()
                sr = _sha256(b"\x01" + c + sr).digest()
                if not fn & 1:
                    while fn and not fn & 1:
                        fn >>= 1
                        sn >>= 1
            else:
                sr = _sha256(b"\x01" + sr + c).digest()
            fn >>= 1
            sn >>= 1
        return sn == 0 and fr == old_root and sr == new_root
    except Exception:  # pragma: no cover - defensive: verifiers never raise
        return False

"""Ed25519 signing keys, X25519 sealed boxes, and key files.

Every signature is domain-separated: the signed bytes are the canonical encoding of
``["tpledger-sig/v1", chain_id, kind, payload]``, so a signature made for one chain or one kind
of object never verifies for another. Key files are JSON, written 0600, and refused when they
are readable by group or world. Secret material is never printed or put in an error message.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.public
import nacl.signing

from tpledger.ledger.encoding import pack
from tpledger.ledger.errors import KeyFileError, SignatureError
from tpledger.ledger.jsonsafe import loads_bounded

SIG_DOMAIN = "tpledger-sig/v1"
KEYFILE_KIND = "tpledger-key"
ROLES = ("validator", "optician", "insurer", "cnam", "auditor", "admin")  # admin: a governing
# organisation's admin key (Ed25519 only used), kept in a file of its own (ORG.admin.json)


_SIG_PREFIXES: dict[tuple[str, str], bytes] = {}


def signing_payload(chain_id: str, kind: str, payload: bytes) -> bytes:
    """The exact bytes an Ed25519 signature covers: ``pack([SIG_DOMAIN, chain_id, kind,
    payload])``, assembled from a cached prefix (one per chain and kind) and the payload."""
    prefix = _SIG_PREFIXES.get((chain_id, kind))
    if prefix is None:
        # the packed array with an empty payload, minus that payload's 2-byte bin8 header
        prefix = pack([SIG_DOMAIN, chain_id, kind, b""])[:-2]
        if len(_SIG_PREFIXES) < 1024:  # a few chains and kinds in practice
            _SIG_PREFIXES[(chain_id, kind)] = prefix
    if payload.__class__ is not bytes:
        return pack([SIG_DOMAIN, chain_id, kind, payload])  # pack says what is wrong with it
    return prefix + _bin_header(len(payload)) + payload


def _bin_header(n: int) -> bytes:
    if n < 0x100:
        return b"\xc4" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


class Signer:
    """An Ed25519 signing key. ``repr`` never shows the secret."""

    __slots__ = ("_key", "public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise KeyFileError("an Ed25519 seed is 32 bytes")
        self._key = nacl.signing.SigningKey(seed)
        self.public: bytes = bytes(self._key.verify_key)

    @classmethod
    def generate(cls) -> Signer:
        return cls(os.urandom(32))

    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, chain_id: str, kind: str, payload: bytes) -> bytes:
        return bytes(self._key.sign(signing_payload(chain_id, kind, payload)).signature)

    def __repr__(self) -> str:
        return f"Signer(public={self.public.hex()[:16]}…)"


_VERIFY_CACHE: dict[bytes, nacl.signing.VerifyKey] = {}


def _verify_key(public: bytes) -> nacl.signing.VerifyKey:
    vk = _VERIFY_CACHE.get(public)
    if vk is None:
        vk = nacl.signing.VerifyKey(public)
        if len(_VERIFY_CACHE) < 100_000:
            _VERIFY_CACHE[public] = vk
    return vk


def verify(public: bytes, chain_id: str, kind: str, payload: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is ``public``'s signature of this payload. Never raises."""
    if not (isinstance(public, bytes) and len(public) == 32):
        return False
    if not (isinstance(signature, bytes) and len(signature) == 64):
        return False
    try:
        _verify_key(public).verify(signing_payload(chain_id, kind, payload), signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        return False
    return True


class BoxKey:
    """An X25519 key pair for sealed boxes (anonymous sender, one recipient)."""

    __slots__ = ("_key", "public")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise KeyFileError("an X25519 secret is 32 bytes")
        self._key = nacl.public.PrivateKey(secret)
        self.public: bytes = bytes(self._key.public_key)

    @classmethod
    def generate(cls) -> BoxKey:
        return cls(bytes(nacl.public.PrivateKey.generate()))

    def secret(self) -> bytes:
        return bytes(self._key)

    def open(self, sealed: bytes) -> bytes:
        try:
            return bytes(nacl.public.SealedBox(self._key).decrypt(sealed))
        except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
            raise SignatureError("sealed box does not open with this key") from exc

    def __repr__(self) -> str:
        return f"BoxKey(public={self.public.hex()[:16]}…)"


def seal(recipient_public: bytes, data: bytes) -> bytes:
    """Seal ``data`` to an X25519 public key (libsodium crypto_box_seal)."""
    return bytes(nacl.public.SealedBox(nacl.public.PublicKey(recipient_public)).encrypt(data))


@dataclass(frozen=True)
class KeyFile:
    """A participant's or validator's keys: org name, role, Ed25519 and X25519 secrets."""

    org: str
    role: str
    signer: Signer
    box: BoxKey

    @classmethod
    def generate(cls, org: str, role: str) -> KeyFile:
        if role not in ROLES:
            raise KeyFileError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        return cls(org, role, Signer.generate(), BoxKey.generate())

    def public_info(self) -> dict[str, str]:
        return {
            "org": self.org,
            "role": self.role,
            "ed25519": self.signer.public.hex(),
            "x25519": self.box.public.hex(),
        }

    def save(self, path: str | Path) -> None:
        """Write the key file with mode 0600; refuses to overwrite an existing file."""
        body = {
            "kind": KEYFILE_KIND,
            "version": 1,
            **self.public_info(),
            "ed25519_seed": self.signer.seed().hex(),
            "x25519_secret": self.box.secret().hex(),
        }
        data = (json.dumps(body, indent=2) + "\n").encode()
        try:
            fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from exc
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot create: {exc.strerror}") from exc
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    @classmethod
    def load(cls, path: str | Path) -> KeyFile:
        p = Path(path)
        try:
            st = p.stat()
        except OSError as exc:
            raise KeyFileError(f"{p}: cannot read key file: {exc.strerror}") from exc
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"{p}: key file is accessible by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); run chmod 600"
            )
        if st.st_size > 64 * 1024:
            raise KeyFileError(f"{p}: key file too large")
        try:
            body = loads_bounded(p.read_bytes(), 64 * 1024)
            if body.get("kind") != KEYFILE_KIND or body.get("version") != 1:
                raise KeyFileError(f"{p}: not a tpledger key file (version 1)")
            org, role = body["org"], body["role"]
            if not isinstance(org, str) or role not in ROLES:
                raise KeyFileError(f"{p}: bad org or role")
            signer = Signer(bytes.fromhex(body["ed25519_seed"]))
            box = BoxKey(bytes.fromhex(body["x25519_secret"]))
        except KeyFileError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyFileError(f"{p}: malformed key file ({type(exc).__name__})") from None
        if body.get("ed25519") not in (None, signer.public.hex()):
            raise KeyFileError(f"{p}: public key does not match the secret")
        return cls(org, role, signer, box)

"""Patient identity: NIR validation, salted commitments, sealed openings.

The ledger never sees who the patient is. The optician draws a fresh 256-bit salt, puts only
``commitment(opening)`` in the claim, and seals the :class:`Opening` (salt + identity) to each
payer's X25519 key; the claim carries only ``sealed_digest`` of each sealed box. Deleting the
opening (and its salt) makes the on-ledger commitment unlinkable.

Commitment (v1)::

    tagged_hash("tpledger/patient-commitment/v1", salt || pack([nir, birth_date]))

with ``nir`` normalized (15 characters, no spaces, upper case) and ``birth_date`` as
``YYYY-MM-DD``. The insurer member number is deliberately *outside* the commitment: it is
routing data for one insurer, can change with a contract, and the same person must commit to
the same identity for every payer. It travels only inside the sealed opening.

Error messages and reprs never contain a NIR, a birth date or a member number.
"""

from __future__ import annotations

import hmac
import os
import random
import re
from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from tpledger.ledger import keys
from tpledger.ledger.encoding import Bytes, Record, Str, pack, spec, tagged_hash
from tpledger.ledger.errors import EncodingError, PatientDataError, SignatureError

COMMITMENT_DOMAIN = "tpledger/patient-commitment/v1"
SEALED_DOMAIN = "tpledger/sealed-opening"
SALT_BYTES = 32
MAX_MEMBER_NUMBER_LEN = 32
MEMBER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"
MAX_SEALED_BYTES = 4096

_NIR_RE = re.compile(r"[12][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{8}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# What a NIR or a date looks like, typed anywhere: 8+ digits (spaces, dots, dashes and slashes
# ignored; an LPP code has 7), a Corsican NIR (2A/2B), or a date in any usual layout.
_PERSONAL_LOOKING = re.compile(
    r"[0-9]{8,}|[0-9]{5,7}2[AaBb][0-9]{3,}|[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}")
_SEPARATORS = str.maketrans("", "", " .\t_")
WITHHELD = "(value withheld: it looks like a NIR or a date)"


def shown(value: object, max_chars: int = 64) -> str:
    """How an error message may echo a value taken from outside: quoted and cut short, or
    :data:`WITHHELD` when it looks like a NIR or a birth date (typed into the wrong field)."""
    text = str(value)
    if _PERSONAL_LOOKING.search(text) or _PERSONAL_LOOKING.search(text.translate(_SEPARATORS)):
        return WITHHELD
    return repr(text if len(text) <= max_chars else text[:max_chars] + "…")


def nir_key(first13: str) -> int:
    """Control key of the 13 first NIR characters: 97 - (number mod 97), 2A→19, 2B→18."""
    digits = first13[:5] + first13[5:7].replace("2A", "19").replace("2B", "18") + first13[7:]
    return 97 - int(digits) % 97


def normalize_nir(nir: str) -> str:
    """Validate a NIR and return it without spaces, upper case. Raises PatientDataError.

    Accepted: sex 1 or 2 (service-public.fr F33078 lists only these), two year digits, month
    01-12 or 20-99 (INSEE uses fictitious months for unknown birth months; unverified),
    department as two digits or 2A/2B, commune and order (3 digits each), 2-digit key.
    """
    if not isinstance(nir, str):
        raise PatientDataError("NIR must be a string")
    s = nir.replace(" ", "").upper()
    if len(s) != 15:
        raise PatientDataError("NIR must have 15 characters (13 plus a 2-digit key)")
    if not s.isascii():
        raise PatientDataError("NIR has a character outside digits and 2A/2B")
    if s[0] not in "12":
        raise PatientDataError("NIR sex digit must be 1 or 2")
    if _NIR_RE.fullmatch(s) is None:
        raise PatientDataError("NIR has a character outside digits and 2A/2B")
    month = int(s[3:5])
    if month == 0 or 13 <= month <= 19:
        raise PatientDataError("NIR month field is out of range")
    if nir_key(s[:13]) != int(s[13:]):
        raise PatientDataError("NIR control key does not match")
    return s


def is_valid_nir(nir: str) -> bool:
    try:
        normalize_nir(nir)
    except PatientDataError:
        return False
    return True


def validate_birth_date(birth_date: str) -> str:
    """Check a ``YYYY-MM-DD`` calendar date (year >= 1850); raises PatientDataError."""
    if not isinstance(birth_date, str) or _DATE_RE.fullmatch(birth_date) is None:
        raise PatientDataError("birth date must be written YYYY-MM-DD")
    try:
        d = date(int(birth_date[:4]), int(birth_date[5:7]), int(birth_date[8:]))
    except ValueError:
        raise PatientDataError("birth date is not a calendar date") from None
    if d.year < 1850:
        raise PatientDataError("birth date is out of range")
    return birth_date


def _validate_member_number(member_number: str) -> str:
    if not isinstance(member_number, str):
        raise PatientDataError("member number must be a string")
    if len(member_number) > MAX_MEMBER_NUMBER_LEN or any(
        c not in MEMBER_CHARS for c in member_number
    ):
        raise PatientDataError(
            f"member number must be at most {MAX_MEMBER_NUMBER_LEN} letters, digits or '-'"
        )
    return member_number


@dataclass(frozen=True, repr=False)
class Opening(Record):
    """What opens a patient commitment. Never logged, never on the ledger; repr hides it all."""

    TAG: ClassVar[int] = 0x58
    MAX_BYTES: ClassVar[int] = 1024
    salt: bytes = spec(Bytes(SALT_BYTES))
    nir: str = spec(Str(15, 15))
    birth_date: str = spec(Str(10, 10))
    # recurring=False: a patient's member number is never kept in the decoder's memory
    member_number: str = spec(Str(MAX_MEMBER_NUMBER_LEN, 0, MEMBER_CHARS, recurring=False))

    def __post_init__(self) -> None:
        if not isinstance(self.salt, bytes) or len(self.salt) != SALT_BYTES:
            raise PatientDataError("opening salt must be 32 bytes")
        if not isinstance(self.nir, str) or normalize_nir(self.nir) != self.nir:
            raise PatientDataError("opening NIR must be normalized (15 characters, no spaces)")
        validate_birth_date(self.birth_date)
        _validate_member_number(self.member_number)

    def __repr__(self) -> str:
        return "Opening(<hidden>)"

    __str__ = __repr__


def new_opening(nir: str, birth_date: str, member_number: str = "") -> Opening:
    """Validate the identity and draw a fresh 32-byte salt from ``os.urandom``."""
    return Opening(
        salt=os.urandom(SALT_BYTES),
        nir=normalize_nir(nir),
        birth_date=validate_birth_date(birth_date),
        member_number=_validate_member_number(member_number),
    )


def commitment(opening: Opening) -> bytes:
    """32-byte hiding (salt) and binding (SHA-256) commitment to (NIR, birth date)."""
    identity = pack([opening.nir, opening.birth_date])
    return tagged_hash(COMMITMENT_DOMAIN, opening.salt + identity)


def verify_opening(opening: Opening, commitment_bytes: bytes) -> bool:
    """True iff ``opening`` opens ``commitment_bytes`` (constant-time compare). Never raises."""
    if not isinstance(commitment_bytes, bytes) or len(commitment_bytes) != 32:
        return False
    if not isinstance(opening, Opening):
        return False
    return hmac.compare_digest(commitment(opening), commitment_bytes)


def seal_opening(opening: Opening, recipient_x25519_pub: bytes) -> bytes:
    """Seal the opening to one payer's X25519 key (anonymous-sender sealed box)."""
    if not isinstance(recipient_x25519_pub, bytes) or len(recipient_x25519_pub) != 32:
        raise PatientDataError("recipient key must be a 32-byte X25519 public key")
    return keys.seal(recipient_x25519_pub, opening.encode())


def sealed_digest(sealed: bytes) -> bytes:
    """The digest a claim's SealedRef carries for one sealed opening."""
    return tagged_hash(SEALED_DOMAIN, sealed)


def open_sealed(box_key: keys.BoxKey, sealed: bytes) -> Opening:
    """Open a sealed opening with the payer's box key. Raises PatientDataError."""
    if not isinstance(sealed, bytes) or len(sealed) > MAX_SEALED_BYTES:
        raise PatientDataError("sealed opening is malformed")
    try:
        data = box_key.open(sealed)
    except SignatureError:
        raise PatientDataError("sealed opening does not open with this key") from None
    try:
        return Opening.decode(data)
    except (EncodingError, PatientDataError):
        raise PatientDataError("sealed opening is malformed") from None


# ---------------------------------------------------------------------------------------------
# Test data helpers (valid but fictitious identities)


def make_test_nir(rng: random.Random, corsica: bool | None = None) -> str:
    """A syntactically valid NIR with a correct key; ``corsica`` forces a 2A/2B department."""
    sex = rng.choice("12")
    year = f"{rng.randrange(100):02d}"
    month = f"{rng.randrange(1, 13):02d}"
    if corsica is None:
        corsica = rng.random() < 0.1
    if corsica:
        dept = rng.choice(["2A", "2B"])
    else:
        dept = f"{rng.choice([d for d in range(1, 96) if d != 20]):02d}"
    commune = f"{rng.randrange(1, 1000):03d}"
    order = f"{rng.randrange(1, 1000):03d}"
    first13 = sex + year + month + dept + commune + order
    return first13 + f"{nir_key(first13):02d}"


def make_test_birth_date(rng: random.Random) -> str:
    d = date.fromordinal(rng.randrange(date(1930, 1, 1).toordinal(), date(2024, 1, 1).toordinal()))
    return d.isoformat()


__all__ = [
    "COMMITMENT_DOMAIN",
    "WITHHELD",
    "Opening",
    "commitment",
    "is_valid_nir",
    "make_test_birth_date",
    "make_test_nir",
    "new_opening",
    "nir_key",
    "normalize_nir",
    "open_sealed",
    "seal_opening",
    "sealed_digest",
    "shown",
    "validate_birth_date",
    "verify_opening",
]

"""Canonical encoding: every signed or hashed object has exactly one byte form.

Objects are msgpack arrays ``[tag, version, field1, field2, ...]`` with fields in a fixed order.
Allowed wire types: non-negative or negative ints within 64 bits, ``bytes`` (msgpack bin),
``str`` (UTF-8), ``bool``, ``None`` and arrays of those. Maps and floats are never used.

The decoder is strict: it rejects oversize input, trailing bytes, unknown tags or versions,
wrong field types or lengths, and any input that does not re-encode to the same bytes (so
non-minimal integer encodings, str8 where fixstr fits, etc. are refused).

Records are frozen dataclasses deriving from :class:`Record`; each field carries a ``Spec`` in
its metadata (see :func:`spec`). Each record class gets, on first use, a compiled decoder and
encoder: straight-line code with the common checks inlined, which hands any doubtful field to
its ``Spec``, so what is accepted and every error message are those of the plain
spec-by-spec converters (``_generic_from_wire``/``_generic_to_wire``, the reference they are
tested against in ``tests/ledger/test_compiled_codec.py``).

Optional C fast paths (``ledger/_speedups.c``, built at install when a C compiler is there;
``TPLEDGER_NO_SPEEDUPS=1`` turns them off): a canonical-only msgpack parser and a record
builder. Both only ever accept what the Python code accepts and hand anything doubtful back to
it, so results and errors are the same with or without them (hypothesis-tested). Example::

    @dataclass(frozen=True)
    class Ping(Record):
        TAG: ClassVar[int] = 0x7F
        nonce: int = spec(U64)
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import msgpack

from tpledger.ledger.errors import EncodingError

_c: Any = None
if not os.environ.get("TPLEDGER_NO_SPEEDUPS"):
    try:
        from tpledger.ledger import _speedups as _c  # type: ignore[attr-defined, no-redef]
    except ImportError:  # no compiler at install time: the Python code alone
        _c = None


def speedups_enabled() -> bool:
    """Whether the C fast paths are in use (reported by ``tpledger bench``)."""
    return _c is not None

MAX_ENCODED_BYTES = 8 * 1024 * 1024  # hard ceiling for any single object
U64_MAX = 2**64 - 1
I64_MIN = -(2**63)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


_DOMAIN_PREFIXES: dict[str, bytes] = {}


def tagged_hash(domain: str, data: bytes) -> bytes:
    """SHA-256 with a domain tag, so hashes of different kinds never collide."""
    prefix = _DOMAIN_PREFIXES.get(domain)
    if prefix is None:
        d = domain.encode()
        prefix = len(d).to_bytes(1, "big") + d
        if len(_DOMAIN_PREFIXES) < 1024:  # a fixed set of domains in practice
            _DOMAIN_PREFIXES[domain] = prefix
    h = hashlib.sha256(prefix)
    h.update(data)
    return h.digest()


_local = threading.local()


def _packer() -> msgpack.Packer:
    p: msgpack.Packer | None = getattr(_local, "packer", None)
    if p is None:  # one per thread: a Packer is reused, never shared between threads
        p = _local.packer = msgpack.Packer(use_bin_type=True, strict_types=True)
    return p


def pack(obj: Any) -> bytes:
    """Pack a wire value (ints, bytes, str, bool, None, lists) with msgpack."""
    packer = _packer()
    try:
        out: bytes = packer.pack(obj)
        return out
    except (TypeError, ValueError, OverflowError) as exc:
        packer.reset()
        raise EncodingError(f"cannot encode value: {exc}") from exc


def array_header(n: int) -> bytes:
    """The msgpack header of an ``n``-item array (what ``pack`` writes before the items)."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 2**16:
        return b"\xdc" + n.to_bytes(2, "big")
    if n < 2**32:
        return b"\xdd" + n.to_bytes(4, "big")
    raise EncodingError("array too long")


def _check_wire(obj: Any, depth: int) -> None:
    if depth > 16:
        raise EncodingError("nesting too deep")
    if isinstance(obj, list):
        for item in obj:
            _check_wire(item, depth + 1)
    elif obj is None or isinstance(obj, (bool, int, bytes, str)):
        return
    else:
        raise EncodingError(f"forbidden wire type {type(obj).__name__}")


def unpack(data: bytes, max_bytes: int = MAX_ENCODED_BYTES, check_types: bool = True,
           canonical: bool = True) -> Any:
    """Strictly unpack one wire value; the input must be its canonical encoding.

    Maps and ext types are refused by the unpacker itself; ``check_types`` also walks the value
    to refuse floats. Record decoding skips the walk: its field specs check every type.
    ``canonical=False`` is only for envelopes that are never hashed nor signed (a batch of
    submitted txs): their every item is then decoded strictly on its own.
    """
    if _c is not None and canonical and data.__class__ is bytes:
        try:  # canonical input only; anything else is named by the reference path below
            fast = _c.unpack(data, max_bytes)
        except ValueError:
            pass
        else:
            if check_types:
                _check_wire(fast, 0)
            return fast
    return _unpack_py(data, max_bytes, check_types, canonical)


def _unpack_py(data: bytes, max_bytes: int, check_types: bool, canonical: bool) -> Any:
    """``unpack`` in Python alone: the reference the C parser is tested against."""
    if data.__class__ is not bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise EncodingError("input is not bytes")
        data = bytes(data)
    if len(data) > max_bytes:
        raise EncodingError(f"input of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    if not data:
        raise EncodingError("empty input")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=max_bytes,
            max_str_len=max_bytes,
            max_array_len=1_000_000,
            max_map_len=0,
            max_ext_len=0,
        )
    except msgpack.ExtraData as exc:
        raise EncodingError("trailing bytes after object") from exc
    except (ValueError, TypeError, msgpack.UnpackException, UnicodeDecodeError) as exc:
        raise EncodingError(f"malformed msgpack: {type(exc).__name__}") from exc
    except Exception as exc:  # msgpack raises a few odd types on garbage; never crash
        raise EncodingError(f"malformed msgpack: {type(exc).__name__}") from exc
    if check_types:
        _check_wire(obj, 0)
    if canonical and pack(obj) != data:
        raise EncodingError("non-canonical encoding")
    return obj


# ---------------------------------------------------------------------------------------------
# Field specs


class Spec:
    """How one field is checked and converted between Python and wire form."""

    def to_wire(self, value: Any, name: str) -> Any:
        raise NotImplementedError

    def from_wire(self, obj: Any, name: str) -> Any:
        raise NotImplementedError


class _Int(Spec):
    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def _check(self, value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EncodingError(f"field {name}: expected integer")
        if not self.lo <= value <= self.hi:
            raise EncodingError(f"field {name}: integer out of range [{self.lo}, {self.hi}]")
        return value

    def to_wire(self, value: Any, name: str) -> Any:
        return self._check(value, name)

    def from_wire(self, obj: Any, name: str) -> Any:
        return self._check(obj, name)


def Int(lo: int = 0, hi: int = U64_MAX) -> Spec:
    return _Int(lo, hi)


U64 = Int(0, U64_MAX)
U32 = Int(0, 2**32 - 1)
U8 = Int(0, 255)


class _Bool(Spec):
    def _check(self, value: Any, name: str) -> bool:
        if not isinstance(value, bool):
            raise EncodingError(f"field {name}: expected bool")
        return value

    def to_wire(self, value: Any, name: str) -> Any:
        return self._check(value, name)

    def from_wire(self, obj: Any, name: str) -> Any:
        return self._check(obj, name)


BOOL = _Bool()


class _Bytes(Spec):
    def __init__(self, min_len: int, max_len: int) -> None:
        self.min_len, self.max_len = min_len, max_len

    def _check(self, value: Any, name: str) -> bytes:
        if not isinstance(value, bytes):
            raise EncodingError(f"field {name}: expected bytes")
        if not self.min_len <= len(value) <= self.max_len:
            if self.min_len == self.max_len:
                raise EncodingError(f"field {name}: expected exactly {self.min_len} bytes")
            raise EncodingError(
                f"field {name}: length {len(value)} outside [{self.min_len}, {self.max_len}]"
            )
        return value

    def to_wire(self, value: Any, name: str) -> Any:
        return self._check(value, name)

    def from_wire(self, obj: Any, name: str) -> Any:
        return self._check(obj, name)


def Bytes(n: int) -> Spec:
    """Exactly ``n`` bytes."""
    return _Bytes(n, n)


def VarBytes(max_len: int, min_len: int = 0) -> Spec:
    return _Bytes(min_len, max_len)


HASH32 = Bytes(32)
PUBKEY = Bytes(32)
SIG = Bytes(64)


class _Str(Spec):
    def __init__(self, max_len: int, min_len: int, charset: str | None) -> None:
        self.max_len, self.min_len, self.charset = max_len, min_len, charset
        self._pattern = None if charset is None else re.compile(f"[{re.escape(charset)}]*")
        self._known_good: set[str] = set()

    def _check(self, value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise EncodingError(f"field {name}: expected string")
        if not self.min_len <= len(value) <= self.max_len:
            raise EncodingError(
                f"field {name}: length {len(value)} outside [{self.min_len}, {self.max_len}]"
            )
        if self._pattern is not None and value not in self._known_good:
            if self._pattern.fullmatch(value) is None:
                raise EncodingError(f"field {name}: character outside the allowed set")
            if len(self._known_good) < 4096:  # org names, codes: a few values, seen often
                self._known_good.add(value)
        return value

    def to_wire(self, value: Any, name: str) -> Any:
        return self._check(value, name)

    def from_wire(self, obj: Any, name: str) -> Any:
        return self._check(obj, name)


def Str(max_len: int, min_len: int = 0, charset: str | None = None) -> Spec:
    return _Str(max_len, min_len, charset)


ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_."
OrgId = Str(64, 1, ID_CHARS)  # organisation / validator names: lowercase, ASCII
DIGITS = "0123456789"
REASON_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"
MAX_REASON_LEN = 64
ReasonCode = Str(MAX_REASON_LEN, 0, REASON_CHARS)  # a reason or rule code ("" = none)
LppCode = Str(7, 7, DIGITS)  # an LPP code: 7 digits


class _Optional(Spec):
    def __init__(self, inner: Spec) -> None:
        self.inner = inner

    def to_wire(self, value: Any, name: str) -> Any:
        return None if value is None else self.inner.to_wire(value, name)

    def from_wire(self, obj: Any, name: str) -> Any:
        return None if obj is None else self.inner.from_wire(obj, name)


def Optional(inner: Spec) -> Spec:
    return _Optional(inner)


class _List(Spec):
    def __init__(self, inner: Spec, max_len: int, min_len: int) -> None:
        self.inner, self.max_len, self.min_len = inner, max_len, min_len

    def to_wire(self, value: Any, name: str) -> Any:
        if not isinstance(value, (tuple, list)):
            raise EncodingError(f"field {name}: expected a sequence")
        if not self.min_len <= len(value) <= self.max_len:
            raise EncodingError(
                f"field {name}: {len(value)} items outside [{self.min_len}, {self.max_len}]"
            )
        return [self.inner.to_wire(v, f"{name}[{i}]") for i, v in enumerate(value)]

    def from_wire(self, obj: Any, name: str) -> Any:
        if not isinstance(obj, list):
            raise EncodingError(f"field {name}: expected an array")
        if not self.min_len <= len(obj) <= self.max_len:
            raise EncodingError(
                f"field {name}: {len(obj)} items outside [{self.min_len}, {self.max_len}]"
            )
        return tuple(self.inner.from_wire(v, f"{name}[{i}]") for i, v in enumerate(obj))


def ListOf(inner: Spec, max_len: int, min_len: int = 0) -> Spec:
    """A bounded array; decodes to a tuple (records stay hashable and immutable)."""
    return _List(inner, max_len, min_len)


class _HashList(Spec):
    """A bounded sequence of 32-byte hashes, packed on the wire as one byte string (n * 32
    bytes) instead of n separate byte strings: 2 bytes smaller per hash, e.g. in proofs."""

    def __init__(self, max_count: int) -> None:
        self.max_count = max_count

    def to_wire(self, value: Any, name: str) -> Any:
        if not isinstance(value, (tuple, list)) or len(value) > self.max_count:
            raise EncodingError(f"field {name}: expected at most {self.max_count} hashes")
        if not all(isinstance(h, bytes) and len(h) == 32 for h in value):
            raise EncodingError(f"field {name}: every hash is exactly 32 bytes")
        return b"".join(value)

    def from_wire(self, obj: Any, name: str) -> Any:
        if not isinstance(obj, bytes) or len(obj) % 32 or len(obj) > 32 * self.max_count:
            raise EncodingError(f"field {name}: expected a multiple of 32 bytes, "
                                f"at most {self.max_count} hashes")
        return tuple(obj[i:i + 32] for i in range(0, len(obj), 32))


def HashList(max_count: int) -> Spec:
    return _HashList(max_count)


class _Nested(Spec):
    def __init__(self, cls: type[Record]) -> None:
        self.cls = cls

    def to_wire(self, value: Any, name: str) -> Any:
        if not isinstance(value, self.cls):
            raise EncodingError(f"field {name}: expected {self.cls.__name__}")
        return value.to_wire()

    def from_wire(self, obj: Any, name: str) -> Any:
        return self.cls.from_wire(obj)


def Nested(cls: type[Record]) -> Spec:
    return _Nested(cls)


def spec(s: Spec, default: Any = dataclasses.MISSING) -> Any:
    """Declare a record field with its wire spec: ``amount_cents: int = spec(U64)``.

    ``default`` (an immutable value) lets callers omit a field that a later version of the
    record appended; the wire form always carries every field."""
    return dataclasses.field(default=default, metadata={"spec": s})


# ---------------------------------------------------------------------------------------------
# Records

R = TypeVar("R", bound="Record")

_TAGS: dict[int, type[Record]] = {}


@dataclass(frozen=True)
class Record:
    """Base class of every canonical object: ``[TAG, VERSION, *fields]`` on the wire."""

    TAG: ClassVar[int] = -1
    VERSION: ClassVar[int] = 1
    MAX_BYTES: ClassVar[int] = 64 * 1024

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        tag = cls.__dict__.get("TAG")
        if tag is not None and tag >= 0:
            other = _TAGS.get(tag)
            if other is not None and other.__qualname__ != cls.__qualname__:
                raise RuntimeError(f"record tag {tag:#x} used by {other} and {cls}")
            _TAGS[tag] = cls

    @classmethod
    def _specs(cls) -> list[tuple[str, Spec]]:
        cached = cls.__dict__.get("_spec_cache")
        if cached is None:
            cached = [(f.name, f.metadata["spec"]) for f in dataclasses.fields(cls)]
            setattr(cls, "_spec_cache", cached)  # noqa: B010 - per-class cache
        return cached

    def to_wire(self) -> list[Any]:
        fn = type(self).__dict__.get("_to_wire_fn")
        if fn is None:
            fn = _compile_to_wire(type(self))
        out: list[Any] = fn(self)
        return out

    def _generic_to_wire(self) -> list[Any]:
        """The plain spec-by-spec conversion: the reference the compiled one is tested against."""
        out: list[Any] = [self.TAG, self.VERSION]
        for name, s in self._specs():
            out.append(s.to_wire(getattr(self, name), name))
        return out

    @classmethod
    def from_wire(cls: type[R], obj: Any) -> R:
        fn = cls.__dict__.get("_from_wire_fn")
        if fn is None:
            fn = _compile_from_wire(cls)
        out: R = fn(obj)
        return out

    @classmethod
    def _generic_from_wire(cls: type[R], obj: Any) -> R:
        """The plain spec-by-spec decoder: the reference the compiled one is tested against,
        and the one that words every error (the compiled decoder defers to it on any doubt)."""
        specs = cls._specs()
        if not isinstance(obj, list):
            raise EncodingError(f"{cls.__name__}: expected an array")
        if len(obj) != 2 + len(specs):
            raise EncodingError(
                f"{cls.__name__}: expected {2 + len(specs)} elements, got {len(obj)}"
            )
        if obj[0] != cls.TAG or type(obj[0]) is not int:
            raise EncodingError(f"{cls.__name__}: unexpected type tag {obj[0]!r}")
        if obj[1] != cls.VERSION or type(obj[1]) is not int:
            raise EncodingError(f"{cls.__name__}: unsupported version {obj[1]!r}")
        values = {name: s.from_wire(obj[2 + i], name) for i, (name, s) in enumerate(specs)}
        return cls(**values)

    @classmethod
    def _make(cls: type[R], **fields: Any) -> R:
        """``cls(**fields)`` without the frozen dataclass's per-field ``object.__setattr__``,
        for hot paths. Only for records without ``__post_init__``; every field is a required
        keyword (a compiled per-class constructor replaces this method on first use)."""
        return _compile_make(cls)(**fields)

    def encode(self) -> bytes:
        """The canonical bytes (computed once per instance: records are immutable)."""
        cached: bytes | None = self.__dict__.get("_encoded")
        if cached is not None:
            return cached
        data = pack(self.to_wire())
        if len(data) > self.MAX_BYTES:
            name = type(self).__name__
            raise EncodingError(f"{name} encodes to more than {self.MAX_BYTES} bytes")
        self.__dict__["_encoded"] = data
        return data

    @classmethod
    def decode(cls: type[R], data: bytes) -> R:
        obj: R = _from_wire_of(cls)(unpack(data, cls.MAX_BYTES, check_types=False))
        # unpack() proved ``data`` canonical, so it is what encode() would compute.
        obj.__dict__["_encoded"] = bytes(data)
        return obj

    def digest(self) -> bytes:
        """Domain-separated SHA-256 of the canonical bytes."""
        return tagged_hash(f"tpledger/{type(self).__name__}", self.encode())


# ---------------------------------------------------------------------------------------------
# Compiled converters: per record class, one straight-line function with the common checks
# inlined (exact types, bounds, known-good strings). Whenever a fast check fails it calls the
# field's Spec, so accepted values and error messages are exactly the generic ones.


def _check_src(var: str, s: Spec, ns: dict[str, Any], decode: bool, ind: str,
               name: str) -> list[str]:
    """Source lines that check (and convert) ``var`` (field ``name``) in place against ``s``."""
    k = f"s{len(ns)}"
    ns[k] = s
    fallback = f"{var} = {k}.{'from_wire' if decode else 'to_wire'}({var}, {name!r})"
    t = type(s)
    if t is _Int:
        assert isinstance(s, _Int)
        cond = f"{var}.__class__ is not int or not {s.lo} <= {var} <= {s.hi}"
    elif t is _Bytes:
        assert isinstance(s, _Bytes)
        cond = f"{var}.__class__ is not bytes or not {s.min_len} <= len({var}) <= {s.max_len}"
    elif t is _Str:
        assert isinstance(s, _Str)
        if s._pattern is not None:  # strings already accepted by this very spec
            cond = f"{var}.__class__ is not str or {var} not in {k}._known_good"
        else:
            cond = f"{var}.__class__ is not str or not {s.min_len} <= len({var}) <= {s.max_len}"
    elif t is _Bool:
        cond = f"{var} is not True and {var} is not False"
    elif t is _Nested and not decode:
        assert isinstance(s, _Nested)
        ns[k + "c"] = s.cls
        return [f"{ind}if {var}.__class__ is {k}c:",
                f"{ind}    {var} = {var}.to_wire()",
                f"{ind}else:",
                f"{ind}    {fallback}"]
    elif t is _Nested:
        assert isinstance(s, _Nested)
        ns[k + "c"] = _from_wire_of(s.cls)
        return [f"{ind}{var} = {k}c({var})"]
    elif t is _Optional:
        assert isinstance(s, _Optional)
        inner = _check_src(var, s.inner, ns, decode, ind + "    ", name)
        return [f"{ind}if {var} is not None:", *inner]
    elif t is _List and type(s.inner) is _Bytes and decode:  # type: ignore[attr-defined]
        assert isinstance(s, _List) and isinstance(s.inner, _Bytes)
        lo, hi = s.inner.min_len, s.inner.max_len
        return [f"{ind}if ({var}.__class__ is list and {s.min_len} <= len({var}) <= {s.max_len}"
                f" and all(x.__class__ is bytes and {lo} <= len(x) <= {hi} for x in {var})):",
                f"{ind}    {var} = tuple({var})",
                f"{ind}else:",
                f"{ind}    {fallback}"]
    elif t is _List and type(s.inner) is _Nested:  # type: ignore[attr-defined]
        assert isinstance(s, _List) and isinstance(s.inner, _Nested)
        ns[k + "c"] = s.inner.cls
        if decode:
            ns[k + "f"] = _from_wire_of(s.inner.cls)
            return [f"{ind}if {var}.__class__ is list"
                    f" and {s.min_len} <= len({var}) <= {s.max_len}:",
                    f"{ind}    {var} = tuple([{k}f(x) for x in {var}])",
                    f"{ind}else:",
                    f"{ind}    {fallback}"]
        return [f"{ind}if ({var}.__class__ is tuple and {s.min_len} <= len({var}) <= {s.max_len}"
                f" and all(x.__class__ is {k}c for x in {var})):",
                f"{ind}    {var} = [x.to_wire() for x in {var}]",
                f"{ind}else:",
                f"{ind}    {fallback}"]
    else:
        return [f"{ind}{fallback}"]
    return [f"{ind}if {cond}:", f"{ind}    {fallback}"]


def _from_wire_of(cls: type[Record]) -> Any:
    """The compiled decoder of a record class, compiled on first use (its classmethod while
    it compiles, for a record nested in itself)."""
    fn = cls.__dict__.get("_from_wire_fn")
    if fn is not None:
        return fn.__func__  # the function inside the class's staticmethod
    if cls in _COMPILING:  # a record nested in itself: go through the class
        return cls.from_wire
    return _compile_from_wire(cls)


_COMPILING: set[type[Record]] = set()


def _compile_from_wire(cls: type[R]) -> Any:
    _COMPILING.add(cls)
    try:
        return _compile_from_wire_in(cls)
    finally:
        _COMPILING.discard(cls)


def _compile_from_wire_in(cls: type[R]) -> Any:
    specs = cls._specs()
    ns: dict[str, Any] = {"cls": cls, "generic": cls._generic_from_wire, "new": object.__new__}
    n = 2 + len(specs)
    lines = [
        "def from_wire(obj):",
        f"    if (obj.__class__ is not list or len(obj) != {n} or obj[0] != {cls.TAG}"
        f" or obj[0].__class__ is not int or obj[1] != {cls.VERSION}"
        " or obj[1].__class__ is not int):",
        "        return generic(obj)",
    ]
    names = []
    for i, (name, s) in enumerate(specs):
        var = f"v{i}"
        names.append((name, var))
        lines.append(f"    {var} = obj[{2 + i}]")
        lines.extend(_check_src(var, s, ns, True, "    ", name))
    kwargs = ", ".join(f"{name!r}: {var}" for name, var in names)
    if "__post_init__" in {k for c in cls.__mro__ for k in c.__dict__}:
        lines.append(f"    return cls(**{{{kwargs}}})")
    else:  # what the frozen dataclass __init__ would do, without its per-field setattr
        lines += ["    o = new(cls)", "    d = o.__dict__"]
        lines += [f"    d[{name!r}] = {var}" for name, var in names]
        lines.append("    return o")
    exec("\n".join(lines), ns)
    fn = ns["from_wire"]
    setattr(cls, "_py_from_wire_fn", staticmethod(fn))  # noqa: B010 - the C path's fallback
    plan = None if _c is None or "cls(**" in lines[-1] else _c_plan(cls)
    if plan is not None:  # the C builder, which hands any doubt to ``fn``
        fn = _c.decoder(cls, cls.TAG, cls.VERSION, plan, fn, object.__new__)
    setattr(cls, "_from_wire_fn", staticmethod(fn))  # noqa: B010 - per-class cache
    return fn


# Field kinds of the C record builder (ledger/_speedups.c).
_K_CALL, _K_INT, _K_UINT, _K_BYTES, _K_STR_KNOWN, _K_STR_LEN, _K_BOOL = range(7)
_K_NESTED, _K_LIST_NESTED, _K_LIST_BYTES, _K_OPTIONAL = range(7, 11)
_I64 = 2**63


def _c_field(name: str, s: Spec) -> tuple[str, int, Any, Any, Any]:
    """One field of a C plan: the same checks as ``_check_src``'s fast path; ``_K_CALL``
    (the spec converts or raises) where there is none."""
    t = type(s)
    if t is _Int:
        assert isinstance(s, _Int)
        if s.lo >= -_I64 and s.hi < _I64:
            return (name, _K_INT, s.lo, s.hi, None)
        if s.lo >= 0 and s.hi <= U64_MAX:
            return (name, _K_UINT, s.lo, s.hi, None)
    elif t is _Bytes:
        assert isinstance(s, _Bytes)
        return (name, _K_BYTES, s.min_len, s.max_len, None)
    elif t is _Str:
        assert isinstance(s, _Str)
        if s._pattern is not None:  # the spec's own set of accepted strings
            return (name, _K_STR_KNOWN, 0, 0, s._known_good)
        return (name, _K_STR_LEN, s.min_len, s.max_len, None)
    elif t is _Bool:
        return (name, _K_BOOL, 0, 0, None)
    elif t is _Nested:
        assert isinstance(s, _Nested)
        state = _c_state(_from_wire_of(s.cls))
        if state is not None:
            return (name, _K_NESTED, 0, 0, state)
    elif t is _List and type(s.inner) is _Nested:  # type: ignore[attr-defined]
        assert isinstance(s, _List) and isinstance(s.inner, _Nested)
        state = _c_state(_from_wire_of(s.inner.cls))
        if state is not None:
            return (name, _K_LIST_NESTED, s.min_len, s.max_len, state)
    elif t is _List and type(s.inner) is _Bytes:  # type: ignore[attr-defined]
        assert isinstance(s, _List) and isinstance(s.inner, _Bytes)
        return (name, _K_LIST_BYTES, s.min_len, s.max_len, (s.inner.min_len, s.inner.max_len))
    elif t is _Optional:
        assert isinstance(s, _Optional)
        return (name, _K_OPTIONAL, 0, 0, _c_field(name, s.inner))
    return (name, _K_CALL, 0, 0, s)


def _c_state(fn: Any) -> Any:
    """The C state of a nested record's decoder, or None if that record decodes in Python."""
    try:
        return _c.state(fn)
    except TypeError:
        return None


def _c_plan(cls: type[Record]) -> tuple[tuple[str, int, Any, Any, Any], ...]:
    return tuple(_c_field(name, s) for name, s in cls._specs())


def _compile_make(cls: type[Record]) -> Any:
    assert "__post_init__" not in {k for c in cls.__mro__ for k in c.__dict__}, cls
    names = [name for name, _ in cls._specs()]
    lines = [f"def make(*, {', '.join(names)}):", "    o = new(cls)", "    d = o.__dict__"]
    lines += [f"    d[{name!r}] = {name}" for name in names]
    lines.append("    return o")
    ns: dict[str, Any] = {"cls": cls, "new": object.__new__}
    exec("\n".join(lines), ns)
    fn = ns["make"]
    setattr(cls, "_make", staticmethod(fn))  # noqa: B010 - per-class cache
    return fn


def _compile_to_wire(cls: type[Record]) -> Any:
    specs = cls._specs()
    ns: dict[str, Any] = {}
    lines = ["def to_wire(self):", "    d = self.__dict__"]
    out = [str(cls.TAG), str(cls.VERSION)]
    for i, (name, s) in enumerate(specs):
        var = f"v{i}"
        lines.append(f"    {var} = d[{name!r}]")
        lines.extend(_check_src(var, s, ns, False, "    ", name))
        out.append(var)
    lines.append(f"    return [{', '.join(out)}]")
    exec("\n".join(lines), ns)
    fn = ns["to_wire"]
    setattr(cls, "_to_wire_fn", fn)  # noqa: B010 - per-class cache
    return fn


def decode_any(data: bytes, allowed: tuple[type[Record], ...], max_bytes: int) -> Record:
    """Decode bytes whose tag selects one of ``allowed`` record types."""
    obj = unpack(data, max_bytes, check_types=False)  # the record's specs check the types
    if not isinstance(obj, list) or not obj or isinstance(obj[0], bool):
        raise EncodingError("expected a tagged array")
    for cls in allowed:
        if obj[0] == cls.TAG:
            rec = _from_wire_of(cls)(obj)
            rec.__dict__["_encoded"] = bytes(data)
            return rec
    raise EncodingError(f"unknown type tag {obj[0]!r}")


"""JSON from outside, bounded before it is parsed: size first, then nesting depth.

Python's ``json`` recurses once per level, so a body nested 100,000 deep raises
``RecursionError`` deep inside the parser; :func:`loads_bounded` refuses it first, with a
``ValueError`` that names the limit and never echoes the input.
"""

from __future__ import annotations

import json
import re
from typing import Any

DEFAULT_MAX_DEPTH = 32
# a whole string (escapes included) or one bracket: brackets inside strings are skipped
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")


def json_depth(data: bytes, limit: int) -> int:
    """The nesting depth of ``data`` (a JSON text), scanning at most until it passes
    ``limit`` (then ``limit + 1`` is returned)."""
    depth = deepest = 0
    for m in _TOKENS.finditer(data):
        c = data[m.start()]
        if c in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif c in _CLOSERS:
            depth -= 1
    return deepest


def loads_bounded(data: bytes | str, max_bytes: int,
                  max_depth: int = DEFAULT_MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads`` after checking the size and the nesting depth; ``ValueError`` when
    either is exceeded or the text is not JSON."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise ValueError(f"JSON text larger than {max_bytes} bytes")
    if json_depth(raw, max_depth) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(raw, **kwargs)
    except (UnicodeDecodeError, RecursionError):
        raise ValueError("not valid JSON") from None

"""The node's wall clock, in one place (tests may monkeypatch it)."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000

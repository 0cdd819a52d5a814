"""Test-wide settings: hypothesis without per-example deadlines (CI machines are shared and
slow; speed is measured by the benchmarks, never asserted by tests)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "tpledger", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("tpledger")

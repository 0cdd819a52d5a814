"""A minimal Prometheus text exposition: counters, gauges and a latency summary.

Labels and values never carry personal data: only heights, counts, durations, peer names.
"""

from __future__ import annotations

from collections import deque


class Metrics:
    def __init__(self, prefix: str = "tpledger") -> None:
        self.prefix = prefix
        self.counters: dict[str, float] = {}
        self.gauges: dict[str, float] = {}
        self.help: dict[str, str] = {}
        self._latencies_s: deque[float] = deque(maxlen=10_000)

    def inc(self, name: str, value: float = 1.0, help_text: str = "") -> None:
        self.counters[name] = self.counters.get(name, 0.0) + value
        if help_text:
            self.help.setdefault(name, help_text)

    def set(self, name: str, value: float, help_text: str = "") -> None:
        self.gauges[name] = value
        if help_text:
            self.help.setdefault(name, help_text)

    def observe_commit_latencies(self, seconds: list[float]) -> None:
        self._latencies_s.extend(seconds)

    def latency_quantiles(self) -> dict[float, float]:
        data = sorted(self._latencies_s)
        if not data:
            return {}
        out = {}
        for q in (0.5, 0.9, 0.99):
            out[q] = data[min(len(data) - 1, int(q * len(data)))]
        return out

    def render(self) -> str:
        lines: list[str] = []
        typed: set[str] = set()

        def emit(kind: str, name: str, value: float) -> None:
            base, _, label = name.partition("{")
            full = f"{self.prefix}_{base}"
            if full not in typed:  # one HELP/TYPE per family, before its first sample
                typed.add(full)
                if self.help.get(name):
                    lines.append(f"# HELP {full} {self.help[name]}")
                lines.append(f"# TYPE {full} {kind}")
            lines.append(f"{full}{'{' + label if label else ''} {value:g}")

        for name in sorted(self.counters):
            emit("counter", name, self.counters[name])
        for name in sorted(self.gauges):
            emit("gauge", name, self.gauges[name])
        qs = self.latency_quantiles()
        full = f"{self.prefix}_commit_latency_seconds"
        lines.append(f"# HELP {full} time from admission to commit of a transaction")
        lines.append(f"# TYPE {full} summary")
        for q, v in qs.items():
            lines.append(f'{full}{{quantile="{q}"}} {v:.6f}')
        lines.append(f"{full}_count {len(self._latencies_s)}")
        return "\n".join(lines) + "\n"

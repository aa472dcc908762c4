"""In-process counters and their Prometheus text exposition (format 0.0.4)."""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["Metrics"]


class Metrics:
    """Counters of this collector process since it started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = 0
        self.stored = 0
        self.deduplicated = 0
        self.rate_limited = 0
        self.rejected: Counter[str] = Counter()

    def count_received(self) -> None:
        with self._lock:
            self.received += 1

    def count_rejected(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    def count_rate_limited(self) -> None:
        with self._lock:
            self.rate_limited += 1

    def count_committed(self, total: int, new_rows: int) -> None:
        with self._lock:
            self.stored += new_rows
            self.deduplicated += total - new_rows

    def render(self) -> str:
        """The counters in the Prometheus text format."""
        with self._lock:
            lines = [
                "# HELP pinset_reports_received_total Reports posted to /v1/report.",
                "# TYPE pinset_reports_received_total counter",
                f"pinset_reports_received_total {self.received}",
                "# HELP pinset_reports_stored_total Reports stored as a new row.",
                "# TYPE pinset_reports_stored_total counter",
                f"pinset_reports_stored_total {self.stored}",
                "# HELP pinset_reports_deduplicated_total Reports counted on an identical row.",
                "# TYPE pinset_reports_deduplicated_total counter",
                f"pinset_reports_deduplicated_total {self.deduplicated}",
                "# HELP pinset_reports_rejected_total Reports refused, by reason.",
                "# TYPE pinset_reports_rejected_total counter",
            ]
            lines.extend(
                f'pinset_reports_rejected_total{{reason="{reason}"}} {n}'
                for reason, n in sorted(self.rejected.items())
            )
            lines += [
                "# HELP pinset_reports_rate_limited_total Reports refused with 429.",
                "# TYPE pinset_reports_rate_limited_total counter",
                f"pinset_reports_rate_limited_total {self.rate_limited}",
            ]
        return "\n".join(lines) + "\n"

"""In-process counters and their Prometheus text exposition (format 0.0.4)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

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
        self._queue_depth: Callable[[], int] = lambda: 0
        self._queue_limit = 0

    def track_queue(self, depth: Callable[[], int], limit: int) -> None:
        """Expose the write queue: ``depth()`` now, and the ``limit`` beyond which it sheds."""
        self._queue_depth = depth
        self._queue_limit = limit

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
                "# HELP pinset_ingest_queue_depth Reports waiting for their commit.",
                "# TYPE pinset_ingest_queue_depth gauge",
                f"pinset_ingest_queue_depth {self._queue_depth()}",
                "# HELP pinset_ingest_queue_limit Waiting reports beyond which 503 is answered.",
                "# TYPE pinset_ingest_queue_limit gauge",
                f"pinset_ingest_queue_limit {self._queue_limit}",
            ]
        return "\n".join(lines) + "\n"

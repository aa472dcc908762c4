"""What the background senders share: the retry heap, waiting, stopping, ``with``, one post.

:class:`~pinset.reporting.BackgroundReporter` (failure reports),
:class:`~pinset.reporting.VerdictTally` (verdict counts) and
:class:`~pinset.reporting.UpdateEventReporter` (refused pin updates) each run one daemon
thread that takes items under ``_wakeup`` and puts the ones to try again on a heap by due
time. How an item is built differs; posting it once and judging the answer
(:meth:`SenderWorker._post_once`), waiting for the due items, giving up the rest on close
and joining the thread do not. :class:`DeliveredKeys` is the memory of what was delivered
lately, which the reporter and the update events de-duplicate against.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

if TYPE_CHECKING:
    from pinset.reporting._retry import RetryPolicy

__all__ = ["MAX_WAIT", "DeliveredKeys", "Delivery", "SenderWorker"]

log = logging.getLogger("pinset.reporting")

#: The outcome of one post: delivered, given up for good, or the seconds until the next try.
Delivery = Literal["sent", "given-up"] | float

MAX_WAIT = 3600.0  # a sender thread looks at the clock at least this often

T = TypeVar("T")
W = TypeVar("W", bound="SenderWorker[Any]")


class DeliveredKeys:
    """What was delivered lately: each key for ``seconds`` after its item was observed.

    At most ``entries`` keys are kept; when full, the expired ones go first, then the
    oldest. Not thread-safe by itself: its owner calls it under its lock.
    """

    def __init__(self, seconds: float, entries: int) -> None:
        self.seconds = seconds
        self.entries = entries
        self._until: dict[Hashable, float] = {}

    def recent(self, key: Hashable, now: float) -> bool:
        """Whether ``key`` was delivered less than ``seconds`` before ``now``."""
        return self._until.get(key, now) > now

    def remember(self, key: Hashable, observed: float) -> None:
        """``key`` was delivered; its item was observed at ``observed``."""
        if len(self._until) >= self.entries:
            for old in [k for k, t in self._until.items() if t <= observed]:
                del self._until[old]
            while len(self._until) >= self.entries:
                del self._until[next(iter(self._until))]
        self._until[key] = observed + self.seconds


class SenderWorker(Generic[T]):
    """The shared state and control of a sender thread; items of type ``T``.

    A subclass says what is still queued (:meth:`_queued`) and what giving up the
    retries means for its counters (:meth:`_give_up_retries`), and defines ``close``.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._retries: list[tuple[float, int, T]] = []  # a heap ordered by due time
        self._order = itertools.count()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._counts: dict[str, int] = {}

    #: How long an idle thread with no retry due sleeps before it looks again (``None``:
    #: until an item arrives); a subclass with work of its own on the clock sets it.
    _idle_wait: float | None = None

    def _pop_fresh(self) -> T | None:
        """The next item not yet tried, or ``None`` (called under ``_wakeup``)."""
        raise NotImplementedError

    def _next_item(self) -> T | None:
        """For the thread: the next fresh item, else a due retry; ``None`` once closed.

        Idle until an item arrives, a retry falls due, or ``flush()`` says that an
        injected clock has moved.
        """
        with self._wakeup:
            while True:
                fresh = self._pop_fresh()
                if fresh is not None:
                    self._busy = True
                    return fresh
                now = self._clock()
                if self._retries and self._retries[0][0] <= now:
                    self._busy = True
                    self._counts["retried"] += 1
                    return heapq.heappop(self._retries)[2]
                if self._closed:
                    return None
                self._wakeup.notify_all()
                if self._retries:
                    wait: float | None = min(self._retries[0][0] - now, MAX_WAIT)
                else:
                    wait = self._idle_wait
                self._wakeup.wait(wait)

    def _queued(self) -> bool:
        """Whether items not yet tried are waiting (called under ``_wakeup``)."""
        raise NotImplementedError

    def _give_up_retries(self) -> None:
        """Count the items still waiting for a retry as given up (called under ``_wakeup``)."""
        raise NotImplementedError

    def _count(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._counts[name] += 1

    # Set by each subclass's constructor: how it posts, and when it tries again.
    retry: RetryPolicy
    _transport: Callable[[str, bytes], int]
    _jitter: Callable[[], float]

    def _post_once(self, url: str, body: bytes, attempts: int, name: str) -> Delivery:
        """POST ``body`` to ``url`` (the ``attempts``-th try) and judge the answer.

        A 2xx is ``"sent"``. A URL the transport can never use (``ValueError``) and an
        answer the retry policy will not retry are ``"given-up"``. Anything else is the
        delay before the next try. Counts ``sent`` / ``failed`` / ``given_up``; ``name``
        prefixes the log lines.
        """
        status: int | None = None
        retry_after: float | None = None
        try:
            answer = self._transport(url, body)
        except ValueError as exc:  # a URL the transport can never use: trying again is futile
            log.warning("%s: cannot send to %s: %s", name, url, exc)
            self._count("failed", "given_up")
            return "given-up"
        except Exception as exc:
            log.warning("%s: sending to %s failed: %s", name, url, exc)
        else:
            status = int(answer)
            if 200 <= status < 300:
                self._count("sent")
                return "sent"
            retry_after = getattr(answer, "retry_after", None)
            log.warning("%s: %s answered HTTP %d", name, url, status)
        self._count("failed")
        delay = self.retry.delay(
            attempts, status=status, retry_after=retry_after, jitter=self._jitter()
        )
        if delay is None:
            log.warning("%s: giving up on %s after %d attempt(s)", name, url, attempts)
            self._count("given_up")
            return "given-up"
        return delay

    def _wait_idle(self, timeout: float | None) -> bool:
        """Under ``_wakeup``: wait until every due item has been tried; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (
            self._queued() or self._busy or (self._retries and self._retries[0][0] <= self._clock())
        ):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._wakeup.wait(left)
        return True

    def _stop(self, done: bool, timeout: float | None) -> bool:
        """Give up the retries, stop the thread (within ``timeout``); ``done`` and stopped."""
        with self._wakeup:
            self._closed = True
            self._give_up_retries()
            self._retries.clear()
            thread = self._thread
            self._wakeup.notify_all()
        if thread is not None:
            thread.join(timeout)
            return done and not thread.is_alive()
        return done

    def close(self, timeout: float | None = 5.0) -> bool:
        raise NotImplementedError

    def __enter__(self: W) -> W:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

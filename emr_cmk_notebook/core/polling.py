"""Polling written once: delays that start fast and slow down, and a loop that reads until done."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Backoff:
    """Delays from ``first`` doubling to ``most`` (to ``later`` after ``later_after`` seconds)."""

    def __init__(
        self,
        first: float,
        most: float,
        *,
        later: float | None = None,
        later_after: float = float("inf"),
    ):
        self._delay = first
        self._most = most
        self._later = later if later is not None else most
        self._later_after = later_after
        self._started = time.monotonic()

    def next(self) -> float:
        """The next delay to sleep."""
        delay = self._delay
        cap = self._most
        if time.monotonic() - self._started > self._later_after:
            cap = self._later
        self._delay = min(self._delay * 2, cap)
        return min(delay, cap)


def poll(
    read: Callable[[], T],
    *,
    until: Callable[[T], bool],
    backoff: Backoff,
    timeout: float | None,
    progress: Callable[[T], None] | None = None,
    timed_out: Callable[[T], BaseException] | None = None,
) -> T:
    """``read()`` again, with ``backoff`` between reads, until ``until`` holds for what it read.

    After ``timeout`` seconds the last value read is returned, or ``timed_out(value)`` is raised
    when given; ``progress`` sees every value that is not final yet.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = read()
        if until(value):
            return value
        if deadline is not None and time.monotonic() > deadline:
            if timed_out is None:
                return value
            raise timed_out(value)
        if progress is not None:
            progress(value)
        time.sleep(backoff.next())

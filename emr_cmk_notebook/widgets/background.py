"""Work that runs off the kernel's thread, so a widget never freezes, and a way to wait for it."""

from __future__ import annotations

import threading
from collections.abc import Callable

IsCurrent = Callable[[], bool]


class Background:
    """Debounced re-checks and one-off long calls, each on its own daemon thread."""

    def __init__(self, delay: float = 0.5):
        self.delay = delay
        self._done = threading.Condition()
        self._pending = 0
        self._generation = 0

    def debounce(self, work: Callable[[IsCurrent], None]) -> None:
        """Run ``work`` after ``delay`` unless asked again first; it can ask if still current."""
        with self._done:
            self._generation += 1
            mine = self._generation
            self._pending += 1
        timer = threading.Timer(self.delay, self._debounced, args=(mine, work))
        timer.daemon = True
        timer.start()

    def run(self, work: Callable[[], None]) -> None:
        """Run ``work`` now on a thread of its own."""
        with self._done:
            self._pending += 1
        threading.Thread(target=self._finish, args=(work,), daemon=True).start()

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until every scheduled and running piece of work has finished."""
        with self._done:
            if not self._done.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError(f"background work still running after {timeout:g} s")

    def _current(self, generation: int) -> bool:
        with self._done:
            return generation == self._generation

    def _debounced(self, generation: int, work: Callable[[IsCurrent], None]) -> None:
        # A superseded timer still fires; it only has to count itself as done.
        if self._current(generation):
            self._finish(lambda: work(lambda: self._current(generation)))
        else:
            self._finish(lambda: None)

    def _finish(self, work: Callable[[], None]) -> None:
        try:
            work()
        finally:
            with self._done:
                self._pending -= 1
                self._done.notify_all()

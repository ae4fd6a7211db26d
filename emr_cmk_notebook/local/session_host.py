"""What the local Livy endpoint and the local sessions API share: the session limit, a reaper
thread that looks at every session twice a second, and ending every session on reset or close."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

SESSION_LIMIT = 25
REAPER_PERIOD_SECONDS = 0.5


class SessionHost:
    """Base of ``LivyEndpoint`` and ``SessionsApi``; subclasses say how to list, check, stop."""

    reaper_name = "sessions"

    def __init__(self, emr: Any, keys: Any, work_dir: Path):
        self.emr = emr
        self.keys = keys
        self.work_dir = Path(work_dir)
        self.session_limit = SESSION_LIMIT
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reaper: threading.Thread | None = None

    # --- what subclasses provide -----------------------------------------------------------------

    def _take_all(self) -> list[Any]:
        """Forget every session (the lock is held) and return them."""
        raise NotImplementedError

    def _all(self) -> list[Any]:
        """Every session (the lock is held)."""
        raise NotImplementedError

    def _end(self, session: Any) -> None:
        """End one session and its process (on reset or close)."""
        raise NotImplementedError

    def _sweep(self, session: Any) -> None:
        """Look at one session from the reaper: idle timeout, a process that died."""
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------------------

    def reset(self) -> None:
        """End every session and forget them all."""
        with self._lock:
            sessions = self._take_all()
        stoppers = [threading.Thread(target=self._end, args=(s,), daemon=True) for s in sessions]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()

    def close(self) -> None:
        """End every session and the reaper thread."""
        self._closed.set()
        self.reset()

    def _ensure_reaper(self) -> None:
        with self._lock:
            if self._reaper is None:
                self._reaper = threading.Thread(
                    target=self._reap, name=self.reaper_name, daemon=True
                )
                self._reaper.start()

    def _reap(self) -> None:
        while not self._closed.wait(REAPER_PERIOD_SECONDS):
            with self._lock:
                sessions = self._all()
            for session in sessions:
                self._sweep(session)

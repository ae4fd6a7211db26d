"""Progress of long work (an application starting, a session, a job run) as the line a user
reads: what is happening and for how long. The magics, the launcher and the CLI all show it."""

from __future__ import annotations

import time


class ProgressText:
    """The lines of one piece of long work: ``label: message (1.2 s)``."""

    def __init__(self, label: str):
        self.label = label
        self.started = time.monotonic()

    def elapsed(self) -> str:
        """How long the work has run so far (``1.2 s``)."""
        return f"{time.monotonic() - self.started:.1f} s"

    def line(self, message: str) -> str:
        """The line for one step of the work."""
        return f"{self.label}: {message} ({self.elapsed()})"

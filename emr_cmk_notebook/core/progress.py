"""Progress of long work (an application starting, a session, a job run) as the line a user
reads: what is happening and for how long. The magics, the launcher and the CLI all show it;
a running Spark statement adds how far its tasks are."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace


class ProgressText:
    """The lines of one piece of long work: ``label: message (1.2 s)``."""

    def __init__(self, label: str, started: float | None = None):
        self.label = label
        # ``time.monotonic()`` when the work began (default: now).
        self.started = time.monotonic() if started is None else started

    def elapsed(self) -> str:
        """How long the work has run so far (``1.2 s``)."""
        return f"{time.monotonic() - self.started:.1f} s"

    def line(self, message: str) -> str:
        """The line for one step of the work."""
        return f"{self.label}: {message} ({self.elapsed()})"


class ProgressLog:
    """Progress as lines of a log (a terminal, CI): a line when the step changes, not one each
    time the same step is checked again."""

    def __init__(self, label: str, write: Callable[[str], None]):
        self.text = ProgressText(label)
        self._write = write
        self._last: str | None = None

    def __call__(self, message: str) -> None:
        if message != self._last:
            self._last = message
            self._write(self.text.line(message))


@dataclass(frozen=True)
class SparkProgress:
    """Where a running Spark statement is: what the service reports of it, nothing guessed.

    Livy reports a fraction (its statement's ``progress``: completed tasks over all tasks of the
    statement's jobs); Spark Connect (pyspark 4) reports its stages and their tasks.
    """

    state: str = "running"
    fraction: float | None = None
    stages: tuple[int, int] | None = None  # (done, total)
    tasks: tuple[int, int] | None = None  # (done, total)
    running_tasks: int | None = None

    @property
    def done_fraction(self) -> float | None:
        """The part done, from the task counts when known, else the reported fraction."""
        if self.tasks is not None and self.tasks[1]:
            return self.tasks[0] / self.tasks[1]
        return self.fraction

    def ended(self, outcome: str) -> SparkProgress:
        """The last word on the statement: how it ended; all of it when ``done``, else how far
        it had got."""
        if outcome != "done":
            return replace(self, state=outcome, running_tasks=None)
        return SparkProgress(
            state=outcome,
            stages=None if self.stages is None else (self.stages[1], self.stages[1]),
            tasks=None if self.tasks is None else (self.tasks[1], self.tasks[1]),
        )

    def summary(self) -> str:
        """``running · 45% · stages 1/2 · tasks 8/16 (2 running)``, as far as it is known."""
        parts = [self.state]
        part = self.done_fraction
        if part is not None:
            parts.append(f"{part:.0%}")
        if self.stages is not None:
            parts.append(f"stages {self.stages[0]}/{self.stages[1]}")
        if self.tasks is not None:
            running = f" ({self.running_tasks} running)" if self.running_tasks else ""
            parts.append(f"tasks {self.tasks[0]}/{self.tasks[1]}{running}")
        return " · ".join(parts)

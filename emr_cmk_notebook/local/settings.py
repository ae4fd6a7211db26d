"""The backend's settings and their bounds, checked in one place for the CLI and the admin API.

A value outside its bounds (``--latency-ms 1e12`` would stall every later call) is refused with
one line naming the setting and its range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

HOUR = 3600.0
WEEK = 7 * 24 * HOUR


@dataclass(frozen=True)
class Bounds:
    """The range of one setting; ``above`` excludes the minimum itself."""

    minimum: float
    maximum: float
    integer: bool = False
    above: bool = False

    def describe(self) -> str:
        low = f"more than {self.minimum:g}" if self.above else f"at least {self.minimum:g}"
        whole = " (a whole number)" if self.integer else ""
        return f"{low} and at most {self.maximum:g}{whole}"


BOUNDS: dict[str, Bounds] = {
    # Fault injection.
    "latency_ms": Bounds(0, 60_000),
    "throttle_rate": Bounds(0, 1),
    "error_rate": Bounds(0, 1),
    # CloudTrail LookupEvents calls a second (AWS: 2).
    "lookup_tps": Bounds(0, 1000, above=True),
    # Seconds per state change.
    "state_delay": Bounds(0, HOUR),
    "job_step_delay": Bounds(0, HOUR),
    "livy_start_delay": Bounds(0, HOUR),
    # Live sessions per application: AWS allows 25; lower it for tests.
    "livy_session_limit": Bounds(1, 25, integer=True),
    "session_limit": Bounds(1, 25, integer=True),
    # Seconds; EMR Serverless idle timeouts go up to a week (10,080 minutes).
    "livy_idle_timeout": Bounds(0, WEEK, above=True),
    "session_idle_timeout": Bounds(0, WEEK),
    # A Spark Connect auth token lasts an hour on AWS; shorten it for tests.
    "session_token_ttl": Bounds(0, HOUR, above=True),
}


def checked_setting(name: str, value: Any) -> Any:
    """``value`` as the setting ``name`` takes it, or a one-line ValueError with its range."""
    bounds = BOUNDS[name]
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if (
        number is None
        or not math.isfinite(number)
        or (bounds.integer and number != int(number))
        or number < bounds.minimum
        or (bounds.above and number == bounds.minimum)
        or number > bounds.maximum
    ):
        shown = repr(value) if number is None else f"{number:g}"
        raise ValueError(f"{name} must be {bounds.describe()}, not {shown}")
    return int(number) if bounds.integer else float(number)

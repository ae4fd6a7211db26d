"""What a session costs and how long it lives: start, idle since, idle timeout, dashboard link,
resource usage, and which of a kernel's sessions have been idle too long."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.sessions.results import SessionInfo

_TTL = re.compile(r"(\d+)\s*(ms|s|m|min|h|d)")
_TTL_MINUTES = {"ms": 1 / 60000, "s": 1 / 60, "m": 1, "min": 1, "h": 60, "d": 1440}


def epoch(when: Any) -> float | None:
    """A service timestamp (datetime or number) in epoch seconds; None when absent."""
    if when is None:
        return None
    return when.timestamp() if hasattr(when, "timestamp") else float(when)


def ttl_minutes(ttl: Any) -> int | None:
    """A Livy ``ttl`` ("30m", "2h") in whole minutes; None when not set or not readable."""
    found = _TTL.fullmatch(str(ttl or "").strip())
    if found is None:
        return None
    return max(1, round(int(found[1]) * _TTL_MINUTES[found[2]]))


def dashboard_url(target: AwsTarget, info: SessionInfo) -> str | None:
    """The session's Spark UI and logs link (GetResourceDashboard); None when there is none."""
    emr = target.client("emr-serverless")
    try:
        # Which resource id a Livy session has here is UNVERIFIED; the session id is used.
        answer = emr.get_resource_dashboard(
            applicationId=info.application_id, resourceId=str(info.id), resourceType="SESSION"
        )
    except Exception:  # the link is a convenience: status is still worth showing without it
        return None
    return answer.get("url")


def idle_too_long(
    sessions: Iterable[SessionInfo], minutes: float, now: float | None = None
) -> list[SessionInfo]:
    """The sessions idle for more than ``minutes`` (0 or less: none)."""
    if minutes <= 0:
        return []
    now = now or time.time()
    return [s for s in sessions if (s.idle_minutes(now) or 0) > minutes]


def idle_notice(info: SessionInfo, now: float | None = None) -> str:
    """One line saying a session is idle and still billed, and how to end it."""
    idle = info.idle_minutes(now) or 0
    ends = (
        f"; it ends after {info.idle_timeout_minutes} idle min" if info.idle_timeout_minutes else ""
    )
    return (
        f"session {info.id} has been idle for {idle:.0f} min and is still billed{ends}: "
        f"%emr_session stop {info.id} ends it"
    )

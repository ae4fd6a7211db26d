"""Polling written once: what it returns, when it gives up, and what progress sees."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.core.polling import Backoff, poll


def test_poll_returns_the_first_final_value_and_shows_the_others_as_progress():
    states = iter(["starting", "starting", "idle", "busy"])
    seen: list[str] = []
    last = poll(
        lambda: next(states),
        until=lambda s: s == "idle",
        backoff=Backoff(first=0.001, most=0.001),
        timeout=5,
        progress=seen.append,
    )
    assert (last, seen) == ("idle", ["starting", "starting"])


def test_poll_gives_up_after_the_timeout_with_the_last_value_or_the_error_asked_for():
    def forever() -> str:
        return "starting"

    backoff = Backoff(first=0.01, most=0.01)
    assert poll(forever, until=lambda s: False, backoff=backoff, timeout=0.05) == "starting"
    with pytest.raises(TimeoutError, match="still starting"):
        poll(
            forever,
            until=lambda s: False,
            backoff=backoff,
            timeout=0.05,
            timed_out=lambda s: TimeoutError(f"still {s}"),
        )

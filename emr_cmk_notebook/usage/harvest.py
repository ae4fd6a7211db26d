"""CloudTrail event history (``LookupEvents``) for one KMS key: paced, deduplicated and cached.

AWS serves event history at 2 ``LookupEvents`` calls per second per account and region, 50
events a call, newest first, for the last 90 days. A harvest runs one stream per account and
region (the caller's account in each region asked for, plus the key owner's account through an
assumed role), each paced by a rate limiter shared by every harvest in this Python, and retries
throttled or failed calls with jittered exponential backoff.

The cache keeps, per (account, region, key), every event seen and the time spans already read
in full. Asking again reads only what is not covered: for a repeated query that is the span
since the previous harvest, paged newest first until the first event already in the cache. The
last ``settle`` seconds before a harvest do not count as covered, because event history lags.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emr_cmk_notebook.core.errors import THROTTLING_CODES, EmrCmkError, ServiceFault, UserError

if TYPE_CHECKING:
    from emr_cmk_notebook.aws_errors import AwsError

LOOKUP_TPS = 2.0
PAGE_SIZE = 50
HISTORY_SECONDS = 90 * 24 * 3600
# CloudTrail refuses (InvalidTimeRangeException) a StartTime older than 90 days when the request
# arrives, so the oldest time asked for stays this far inside the window.
HISTORY_MARGIN_SECONDS = 300
SETTLE_SECONDS = 15 * 60
_MAX_RETRIES = 8
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 20.0
_CACHE_VERSION = 1


class RateLimiter:
    """Spaces calls at least ``1 / tps`` seconds apart, across threads."""

    def __init__(self, tps: float = LOOKUP_TPS, clock: Callable[[], float] = time.monotonic):
        self.interval = 1.0 / tps
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until this caller may make its call."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


_limiters: dict[tuple[str, str], RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(account: str, region: str) -> RateLimiter:
    """The one limiter of an account and region, shared by every harvest in this Python."""
    with _limiters_lock:
        if (account, region) not in _limiters:
            _limiters[(account, region)] = RateLimiter()
        return _limiters[(account, region)]


@dataclass(frozen=True)
class Stream:
    """One account and region to read event history from, with a CloudTrail client there."""

    account: str
    region: str
    client: Any


@dataclass
class HarvestProgress:
    """How far one stream has got; ``fraction`` of the window read, newest first."""

    account: str
    region: str
    calls: int
    events: int
    window_start: int
    window_end: int
    reached: int

    @property
    def fraction(self) -> float:
        """The share of the window already read, from 0 to 1."""
        span = self.window_end - self.window_start
        return 1.0 if span <= 0 else min(1.0, max(0.0, (self.window_end - self.reached) / span))


@dataclass
class HarvestStats:
    """What a harvest cost: calls, throttled answers, calls that failed for good, events."""

    calls: int = 0
    throttled: int = 0
    failed: int = 0
    events_read: int = 0
    new_events: int = 0
    duplicates_dropped: int = 0
    events_from_cache: int = 0
    seconds: float = 0.0
    streams: list[str] = field(default_factory=list)

    @property
    def calls_per_second(self) -> float:
        """Calls made per second of harvest time, per stream."""
        if not self.seconds or not self.streams:
            return 0.0
        return self.calls / self.seconds / len(self.streams)

    def add(self, other: HarvestStats) -> None:
        """Add another stream's counts to these."""
        for name in ("calls", "throttled", "failed", "events_read", "new_events"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.duplicates_dropped += other.duplicates_dropped
        self.events_from_cache += other.events_from_cache
        self.streams += other.streams

    def to_dict(self) -> dict[str, Any]:
        """The counts as plain data."""
        return {**asdict(self), "calls_per_second": round(self.calls_per_second, 3)}


def cache_dir() -> Path:
    """Where harvests keep their cache: ``$EMR_CMK_HOME/cache/lookup`` (``~/.emr-cmk``)."""
    from emr_cmk_notebook.core.paths import home

    return home() / "cache" / "lookup"


class EventCache:
    """The events of one (account, region, key) seen so far, and the spans read in full."""

    def __init__(self, path: Path | None):
        self.path = path
        self.events: dict[str, tuple[int, str]] = {}
        self.spans: list[list[int]] = []
        if path is not None and path.exists():
            self._load(path)

    @classmethod
    def for_key(cls, account: str, region: str, key_arn: str, folder: Path | None) -> EventCache:
        """The cache file of one account, region and key under ``folder`` (None: no cache)."""
        if folder is None:
            return cls(None)
        key_id = key_arn.rsplit("/", 1)[-1]
        return cls(folder / f"{account}_{region}_{key_id}.json")

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            if data.get("version") != _CACHE_VERSION:
                return
            self.events = {eid: (int(t), text) for eid, t, text in data["events"]}
            self.spans = [[int(a), int(b)] for a, b in data["spans"]]
        except (OSError, ValueError, KeyError, TypeError):
            # A damaged cache only costs a full read; it is rewritten afterwards.
            self.events, self.spans = {}, []

    def save(self) -> None:
        """Write the cache whole or not at all (temporary file, then rename)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "version": _CACHE_VERSION,
            "spans": self.spans,
            "events": [[eid, t, text] for eid, (t, text) in self.events.items()],
        }
        with tempfile.NamedTemporaryFile(
            "w", dir=self.path.parent, delete=False, suffix=".tmp"
        ) as out:
            json.dump(data, out)
        os.replace(out.name, self.path)

    def gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of ``[start, end]`` not read in full yet, newest first.

        A gap starts on the last second of the covered span below it, so newest-first paging
        meets a cached event there and stops.
        """
        gaps: list[tuple[int, int]] = []
        top = end
        for low, high in sorted(self.spans, key=lambda span: span[1], reverse=True):
            if high < start or low > top:
                continue
            if high < top:
                gaps.append((max(high, start), top))
            top = min(top, low)
            if top <= start:
                return gaps
        gaps.append((start, top))
        return gaps

    def cover(self, start: int, end: int) -> None:
        """Mark ``[start, end]`` as read in full, merging touching spans."""
        if end < start:
            return
        spans = sorted([*self.spans, [start, end]])
        merged: list[list[int]] = []
        for low, high in spans:
            if merged and low <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        self.spans = merged

    def records(self, start: int, end: int) -> list[str]:
        """The cached records with an event time in ``[start, end]``, as JSON text."""
        return [text for t, text in self.events.values() if start <= t <= end]


def history_start(now: float) -> int:
    """The oldest time (epoch seconds) a harvest at ``now`` asks event history for."""
    return int(now) - HISTORY_SECONDS + HISTORY_MARGIN_SECONDS


def harvest(
    streams: list[Stream],
    key_arn: str,
    start: int,
    end: int,
    *,
    cache: Path | None = None,
    settle: int = SETTLE_SECONDS,
    progress: Callable[[HarvestProgress], None] | None = None,
    now: Callable[[], float] = time.time,
) -> tuple[list[str], HarvestStats]:
    """Read every event naming ``key_arn`` between ``start`` and ``end`` (epoch seconds).

    Streams run side by side, each at its own account and region's pace. Returns the records
    as JSON text, each ``eventID`` once, and what it cost. ``cache`` is the cache folder (None:
    read everything, keep nothing).
    """
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, len(streams))) as pool:
        futures = [
            pool.submit(_harvest_stream, s, key_arn, start, end, cache, settle, progress, now)
            for s in streams
        ]
        results = [f.result() for f in futures]
    stats = HarvestStats()
    records: dict[str, str] = {}
    for found, stream_stats in results:
        stats.add(stream_stats)
        for eid, text in found.items():
            if eid in records:
                stats.duplicates_dropped += 1
            records[eid] = text
    stats.seconds = time.monotonic() - began
    return list(records.values()), stats


def _harvest_stream(
    stream: Stream,
    key_arn: str,
    start: int,
    end: int,
    folder: Path | None,
    settle: int,
    progress: Callable[[HarvestProgress], None] | None,
    now: Callable[[], float],
) -> tuple[dict[str, str], HarvestStats]:
    stats = HarvestStats(streams=[f"{stream.account}/{stream.region}"])
    cache = EventCache.for_key(stream.account, stream.region, key_arn, folder)
    limiter = limiter_for(stream.account, stream.region)
    started = int(now())
    oldest = max(start, history_start(started))
    cached_before = {eid for eid, (t, _) in cache.events.items() if start <= t <= end}
    state = HarvestProgress(stream.account, stream.region, 0, 0, start, end, end)
    # A window wholly older than event history has nothing to read (and no valid time range).
    for low, high in cache.gaps(oldest, end) if oldest <= end else []:
        _read_gap(stream, key_arn, low, high, cache, limiter, stats, state, progress)
        cache.cover(low, min(high, started - settle))
    cache.save()
    found = {eid: text for eid, (t, text) in cache.events.items() if start <= t <= end}
    stats.events_from_cache = len(cached_before)
    return found, stats


def _read_gap(
    stream: Stream,
    key_arn: str,
    low: int,
    high: int,
    cache: EventCache,
    limiter: RateLimiter,
    stats: HarvestStats,
    state: HarvestProgress,
    progress: Callable[[HarvestProgress], None] | None,
) -> None:
    params: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": key_arn}],
        "StartTime": low,
        "EndTime": high,
        "MaxResults": PAGE_SIZE,
    }
    while True:
        page = _lookup(stream, params, limiter, stats)
        for event in page.get("Events", []):
            eid, when = event.get("EventId"), _epoch(event.get("EventTime"))
            if not eid or "CloudTrailEvent" not in event:
                continue
            if eid in cache.events and when <= low:
                return
            stats.events_read += 1
            stats.new_events += eid not in cache.events
            cache.events[eid] = (when, event["CloudTrailEvent"])
            state.events += 1
            state.reached = min(state.reached, when)
        state.calls = stats.calls
        if progress is not None:
            progress(state)
        token = page.get("NextToken")
        if not token:
            return
        params["NextToken"] = token


def _lookup(
    stream: Stream, params: dict[str, Any], limiter: RateLimiter, stats: HarvestStats
) -> dict[str, Any]:
    from emr_cmk_notebook.aws_errors import AwsCallFailed, AwsRefused, AwsRequestInvalid

    for attempt in range(_MAX_RETRIES + 1):
        limiter.wait()
        stats.calls += 1
        try:
            return stream.client.lookup_events(**params)
        except (AwsRefused, AwsRequestInvalid) as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            throttled = exc.code in THROTTLING_CODES
            if not throttled and status < 500:
                stats.failed += 1
                raise _refusal(stream, exc) from exc
            stats.throttled += throttled
        except AwsCallFailed:
            if attempt == _MAX_RETRIES:
                stats.failed += 1
                raise
        if attempt < _MAX_RETRIES:
            ceiling = min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)
            time.sleep(ceiling / 2 + random.uniform(0, ceiling / 2))
    stats.failed += 1
    raise ServiceFault(
        f"CloudTrail in {stream.region} kept refusing LookupEvents after {_MAX_RETRIES} retries",
        code="ThrottlingException",
        operation="LookupEvents",
    )


def _refusal(stream: Stream, exc: AwsError) -> EmrCmkError:
    """The boundary's refusal, saying which account and region refused (the key owner's role
    reads the owner's account)."""
    where = f"account {stream.account}, {stream.region}"
    if "AccessDenied" in exc.code or exc.code == "UnauthorizedOperation":
        return UserError(
            f"CloudTrail refused LookupEvents in {where}: {exc.detail or exc.code}",
            hint="the caller needs cloudtrail:LookupEvents",
        )
    return ServiceFault(
        f"CloudTrail LookupEvents failed in {where}: {exc.code}: {exc.detail}",
        code=exc.code,
        operation="LookupEvents",
    )


def _epoch(value: Any) -> int:
    if hasattr(value, "timestamp"):
        return int(value.timestamp())
    return int(float(value or 0))

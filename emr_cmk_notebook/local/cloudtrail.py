"""The local CloudTrail: events per account and region, LookupEvents, and log file delivery."""

from __future__ import annotations

import bisect
import copy
import logging
import math
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emr_cmk_notebook.local import cloudtrail_records as records
from emr_cmk_notebook.local import cloudtrail_trails
from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.identity import Identity
from emr_cmk_notebook.local.settings import checked_setting
from emr_cmk_notebook.local.wire import (
    ApiRequest,
    ApiResponse,
    checked_json_input,
    json11_error,
    json11_ok,
)

log = logging.getLogger(__name__)

RETENTION_SECONDS = 90 * 24 * 3600


@dataclass(frozen=True)
class _Event:
    time: int
    seq: int
    record: dict[str, Any]
    username: str | None


def _order(event: _Event) -> tuple[int, int]:
    # Arrival order breaks ties between events of the same second, so paging is stable.
    return (event.time, event.seq)


class _TokenBucket:
    """``rate`` requests per second with a burst of ``max(1, rate)``."""

    def __init__(self, rate: float, now: float):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.last = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class CloudTrail:
    """Every emulated KMS call as a CloudTrail record: searchable and delivered as log files."""

    def __init__(
        self,
        log_dir: Path,
        *,
        lookup_tps: float = 2.0,
        flush_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        home_region: str = "us-east-1",
    ):
        """Keep events in memory; deliver them under ``log_dir`` every ``flush_interval`` seconds.

        A non-positive ``flush_interval`` delivers only on ``flush()`` and ``close()``.
        """
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self.trails = cloudtrail_trails.Trails(home_region, clock)
        self._lock = threading.Lock()
        self._events: dict[tuple[str, str], list[_Event]] = {}
        self._seq = 0
        self._tps: float | None = None
        self._buckets: dict[tuple[str, str], _TokenBucket] = {}
        self.set_lookup_tps(lookup_tps)
        self._pending_lock = threading.Lock()
        self._pending: list[tuple[str, str, dict[str, Any]]] = []
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if flush_interval > 0:
            self._flusher = threading.Thread(
                target=self._flush_every,
                args=(flush_interval,),
                name="cloudtrail-flush",
                daemon=True,
            )
            self._flusher.start()

    def record_kms_call(
        self,
        *,
        identity: Identity,
        region: str,
        event_name: str,
        key_arn: str | None,
        request_parameters: dict[str, Any],
        response_elements: dict[str, Any] | None,
        error_code: str | None = None,
        error_message: str | None = None,
        source_ip: str = "127.0.0.1",
        user_agent: str = "",
        request_id: str | None = None,
        event_time: float | None = None,
        read_only: bool | None = None,
        additional_event_data: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Log one KMS call in the caller's account and, for another account's key, in the owner's.

        A cross-account call refused with ``AccessDeniedException`` is logged only for the caller.
        Returns the stored records, the caller's copy first.
        """
        recipients = [identity.account_id]
        owner = records.key_account(key_arn)
        if owner and owner != identity.account_id and error_code != "AccessDeniedException":
            recipients.append(owner)
        shared_event_id = str(uuid.uuid4()) if len(recipients) > 1 else None
        when = self._clock() if event_time is None else event_time
        request_id = request_id or str(uuid.uuid4())
        stored = []
        for account in recipients:
            record = records.build_kms_record(
                identity=identity,
                region=region,
                event_name=event_name,
                key_arn=key_arn,
                request_parameters=request_parameters,
                response_elements=response_elements,
                error_code=error_code,
                error_message=error_message,
                source_ip=source_ip,
                user_agent=user_agent,
                request_id=request_id,
                event_time=when,
                read_only=read_only,
                recipient_account_id=account,
                shared_event_id=shared_event_id,
                additional_event_data=additional_event_data,
            )
            self._store(account, region, record, identity.service)
            stored.append(record)
        return stored

    def put_record(self, account_id: str, region: str, record: dict[str, Any]) -> None:
        """Store a complete CloudTrail record (with an ``eventTime``) for one account and region."""
        if "eventTime" not in record:
            raise ValueError("a CloudTrail record needs an eventTime")
        self._store(account_id, region, record, None)

    def _store(
        self, account: str, region: str, record: dict[str, Any], service: str | None
    ) -> None:
        record = copy.deepcopy(record)
        when = int(records.event_time(record))
        user = records.username(record, service)
        with self._lock:
            self._seq += 1
            event = _Event(when, self._seq, record, user)
            bisect.insort(self._events.setdefault((account, region), []), event, key=_order)
        with self._pending_lock:
            self._pending.append((account, region, record))

    @property
    def lookup_tps(self) -> float | None:
        """LookupEvents calls allowed a second per account and region; None when unlimited."""
        return self._tps

    def set_lookup_tps(self, tps: float | None) -> None:
        """Allow ``tps`` LookupEvents calls a second per account and region; None: no limit."""
        if tps is not None:
            tps = checked_setting("lookup_tps", tps)
        with self._lock:
            self._tps = tps
            self._buckets.clear()

    def _throttle(self, account: str, region: str) -> None:
        now = self._clock()
        with self._lock:
            if self._tps is None:
                return
            bucket = self._buckets.get((account, region))
            if bucket is None:
                bucket = self._buckets[(account, region)] = _TokenBucket(self._tps, now)
            allowed = bucket.take(now)
        if not allowed:
            raise AwsError("ThrottlingException", "Rate exceeded", 400)

    def lookup_events(self, account_id: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        """Answer a ``LookupEvents`` request for one account and region, newest event first."""
        self._throttle(account_id, region)
        query = records.LookupQuery.parse(body)
        oldest = self._clock() - RETENTION_SECONDS
        for name, bound in (("StartTime", query.start), ("EndTime", query.end)):
            if bound is not None and bound < oldest:
                raise AwsError(
                    "InvalidTimeRangeException",
                    f"{name} {records.iso_time(bound)} is more than 90 days ago; event history "
                    f"covers {records.iso_time(math.ceil(oldest))} onwards.",
                )
        if query.insight:
            # The local trail records no Insights events.
            return {"Events": []}
        found = self._search(account_id, region, query)
        page = found[: query.max_results]
        answer: dict[str, Any] = {
            "Events": [records.history_event(e.record, e.username) for e in page]
        }
        if len(found) > len(page):
            answer["NextToken"] = query.next_token(_order(page[-1]))
        return answer

    def _search(self, account: str, region: str, query: records.LookupQuery) -> list[_Event]:
        """Up to one more match than a page holds, so the caller knows whether more follow."""
        oldest = math.ceil(self._clock() - RETENTION_SECONDS)
        with self._lock:
            events = self._events.get((account, region), [])
            del events[: bisect.bisect_left(events, (oldest, 0), key=_order)]
            stop = len(events)
            if query.after is not None:
                stop = bisect.bisect_left(events, query.after, key=_order)
            if query.end is not None:
                newest = (math.floor(query.end) + 1, 0)
                stop = min(stop, bisect.bisect_left(events, newest, key=_order))
            found: list[_Event] = []
            for index in range(stop - 1, -1, -1):
                event = events[index]
                if query.start is not None and event.time < query.start:
                    break
                if query.matches(event.record, event.username):
                    found.append(event)
                    if len(found) > query.max_results:
                        break
            return found

    def flush(self) -> None:
        """Write every record not yet delivered as gzip log files now."""
        with self._flush_lock:
            with self._pending_lock:
                batch, self._pending = self._pending, []
            files: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
            for account, region, record in batch:
                if not self.trails.logs(record):
                    continue
                files.setdefault((account, region, records.log_day(record)), []).append(record)
            items = list(files.items())
            for done, ((account, region, day), group) in enumerate(items):
                try:
                    path = records.write_log_file(self.log_dir, account, region, day, group)
                    self.trails.deliver(account, path.relative_to(self.log_dir).as_posix(), path)
                except OSError:
                    # Keep what was not written so the next flush delivers it.
                    unsent = [(a, r, rec) for (a, r, _day), g in items[done:] for rec in g]
                    with self._pending_lock:
                        self._pending[:0] = unsent
                    raise

    def _flush_every(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.flush()
            except OSError as exc:
                log.warning(
                    "CloudTrail log delivery to %s failed, will retry: %s", self.log_dir, exc
                )

    def close(self) -> None:
        """Stop the background delivery and write what is still pending."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        self.flush()

    def reset(self) -> None:
        """Forget every event and delete the delivered log files."""
        with self._flush_lock:
            with self._lock:
                self._events.clear()
                self._buckets.clear()
            with self._pending_lock:
                self._pending.clear()
            shutil.rmtree(self.log_dir / "AWSLogs", ignore_errors=True)
            self.trails.reset()

    def stats(self) -> dict[str, Any]:
        """Event counts per account and region, records awaiting delivery, and the log folder."""
        with self._lock:
            counts: dict[str, dict[str, int]] = {}
            for (account, region), events in sorted(self._events.items()):
                if events:
                    counts.setdefault(account, {})[region] = len(events)
            tps = self._tps
        with self._pending_lock:
            pending = len(self._pending)
        return {
            "log_dir": str(self.log_dir),
            "events": counts,
            "pending": pending,
            "lookup_tps": tps,
        }


def handle(trail: CloudTrail, request: ApiRequest) -> ApiResponse:
    """Serve one CloudTrail JSON 1.1 request: ``LookupEvents`` and the trail's own calls."""
    if request.operation in cloudtrail_trails.OPERATIONS:
        return cloudtrail_trails.handle(trail.trails, request)
    try:
        if request.operation != "LookupEvents":
            raise AwsError(
                "UnknownOperationException",
                f"Operation {request.operation or '(none)'} is not served by the local CloudTrail; "
                f"only LookupEvents and {', '.join(sorted(cloudtrail_trails.OPERATIONS))} are.",
            )
        body = checked_json_input(request)
        answer = trail.lookup_events(request.identity.account_id, request.region, body)
    except AwsError as err:
        return json11_error(err)
    return json11_ok(answer)

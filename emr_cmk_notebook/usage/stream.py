"""Many CloudTrail log files to Arrow batches of KMS calls: in parallel, in order, bounded.

Files are read and parsed by a thread pool (reading, gunzip and Arrow's JSON parser release the
GIL); at most ``2 * workers`` files are read ahead of the consumer, so memory holds a few files'
batches however many files there are. Batches come out in file order, each already reduced to
the KMS calls in the scope's window, accounts and regions.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from emr_cmk_notebook.usage.batch import UsageBatch, iso_texts, usage_batch
from emr_cmk_notebook.usage.progress import ProgressFactory
from emr_cmk_notebook.usage.records import read_records
from emr_cmk_notebook.usage.trail_files import LogFile, Scope


def default_workers() -> int:
    """Threads for reading files: enough to overlap S3 round trips with parsing."""
    return min(16, (os.cpu_count() or 1) + 4)


def read_batches(
    files: Sequence[LogFile],
    scope: Scope | None = None,
    *,
    workers: int | None = None,
    progress: ProgressFactory | None = None,
) -> Iterator[UsageBatch]:
    """Each file's KMS calls in ``scope`` as a ``UsageBatch``, in file order."""
    scope = scope or Scope()
    workers = workers or default_workers()
    bar = progress(total=len(files), unit="file", desc="CloudTrail files") if progress else None
    pending: deque[Future[UsageBatch]] = deque()
    upcoming = iter(files)
    calls = 0
    with ThreadPoolExecutor(workers, thread_name_prefix="cloudtrail-read") as pool:
        try:
            for log_file in upcoming:
                pending.append(pool.submit(_read_one, log_file, scope))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                batch = pending.popleft().result()
                following = next(upcoming, None)
                if following is not None:
                    pending.append(pool.submit(_read_one, following, scope))
                calls += batch.table.num_rows
                if bar is not None:
                    bar.set_postfix_str(f"{calls:,} KMS calls", refresh=False)
                    bar.update(1)
                yield batch
        finally:
            for future in pending:
                future.cancel()
            if bar is not None:
                bar.close()


def _read_one(log_file: LogFile, scope: Scope) -> UsageBatch:
    batch = usage_batch(read_records(log_file.read(), log_file.name))
    return within(batch, scope)


def within(batch: UsageBatch, scope: Scope) -> UsageBatch:
    """The rows of ``batch`` in the scope's window, accounts (recipient) and regions."""
    table = batch.table
    times = table.column("event_time")
    tests = []
    if scope.start is not None:
        tests.append(pc.greater_equal(times, pa.scalar(scope.start, times.type)))
    if scope.end is not None:
        tests.append(pc.less_equal(times, pa.scalar(scope.end, times.type)))
    if scope.regions:
        tests.append(_among(table.column("aws_region"), scope.regions))
    if scope.accounts:
        tests.append(_among(table.column("recipient_account_id"), scope.accounts))
    if not tests:
        return batch
    keep = tests[0]
    for test in tests[1:]:
        keep = pc.and_(keep, test)
    return UsageBatch(
        table.filter(pc.fill_null(keep, False)), batch.skipped_non_kms, batch.skipped_malformed
    )


@dataclass
class Tally:
    """Counts, time range and calls per event name over batches, without keeping their rows."""

    kms_records: int = 0
    skipped_non_kms: int = 0
    skipped_malformed: int = 0
    first: datetime | None = None
    last: datetime | None = None
    event_names: Counter[str] = field(default_factory=Counter)

    def add(self, batch: UsageBatch) -> None:
        """Count one batch in."""
        table = batch.table
        self.kms_records += table.num_rows
        self.skipped_non_kms += batch.skipped_non_kms
        self.skipped_malformed += batch.skipped_malformed
        if table.num_rows:
            span = pc.min_max(table.column("event_time")).as_py()
            self.first = min(filter(None, (self.first, span["min"])))
            self.last = max(filter(None, (self.last, span["max"])))
            names = pc.value_counts(table.column("event_name").cast(pa.string()))
            for item in names.to_pylist():
                self.event_names[item["values"]] += item["counts"]

    def summary(self) -> dict[str, Any]:
        """The same plain data as ``UsageFrame.summary()``."""
        first = last = None
        if self.first is not None:
            first, last = iso_texts(pa.array([self.first, self.last])).to_pylist()
        return {
            "kms_records": self.kms_records,
            "skipped_non_kms": self.skipped_non_kms,
            "skipped_malformed": self.skipped_malformed,
            "first_event": first,
            "last_event": last,
            "event_names": dict(self.event_names.most_common()),
        }


def _among(column: pa.ChunkedArray, values: frozenset[str]) -> pa.ChunkedArray:
    return pc.is_in(column.cast(pa.string()), value_set=pa.array(sorted(values), pa.string()))

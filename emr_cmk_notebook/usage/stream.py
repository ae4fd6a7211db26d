"""Many CloudTrail log files to Arrow batches of KMS calls: in parallel, in order, bounded.

Two stages share one thread pool. Files are read and unpacked (ISA-L gunzip, which releases the
GIL) ahead of the consumer; then consecutive ``{"Records": [...]}`` files are parsed together, up
to ``GROUP_BYTES`` of text per Arrow read, because a trail's files are small (a few hundred
records every five minutes) and a read per file costs more in calls than in parsing; a group
per core is parsed at a time. A file of another form, or one too large to share a read, is
parsed alone. At most ``2 * workers`` files and a group per core are in flight ahead of the
consumer, so memory holds a few groups' text however many files there are. Batches come out in file
order, each already reduced to the KMS calls in the scope's window, accounts and regions.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from emr_cmk_notebook.usage.batch import UsageBatch, iso_texts, join_batches, usage_batch
from emr_cmk_notebook.usage.progress import ProgressFactory
from emr_cmk_notebook.usage.records import read_documents, read_records, records_line, unpack
from emr_cmk_notebook.usage.trail_files import LogFile, Scope, is_s3_url

# Text parsed in one Arrow read: enough to make the per-read cost small (a read per file took
# half as long again, on a trail's files; 8 MiB measured faster than 4 and 16), small enough that
# groups in flight stay far below the memory bound.
GROUP_BYTES = 8 << 20
# And at most this many files, so that tiny files do not all sit in memory as one group.
GROUP_FILES = 64

_In = TypeVar("_In")
_Out = TypeVar("_Out")


def default_workers(files: Sequence[LogFile] = ()) -> int:
    """Threads for reading ``files``: for S3, enough to overlap round trips with parsing; for
    local files one per core, as more only take turns at the GIL (measured slower)."""
    cores = os.cpu_count() or 1
    if any(is_s3_url(log_file.name) for log_file in files):
        return min(16, cores + 4)
    return cores


@dataclass
class _Text:
    """One file's unpacked text; ``keys`` is set when it can share a read with others."""

    name: str
    text: bytes
    keys: tuple[str, ...] | None


def read_batches(
    files: Sequence[LogFile],
    scope: Scope | None = None,
    *,
    workers: int | None = None,
    progress: ProgressFactory | None = None,
) -> Iterator[UsageBatch]:
    """The KMS calls in ``scope`` of ``files`` as ``UsageBatch``es, in file order."""
    scope = scope or Scope()
    workers = workers or default_workers(files)
    bar = progress(total=len(files), unit="file", desc="CloudTrail files") if progress else None
    calls = 0
    with ThreadPoolExecutor(workers, thread_name_prefix="cloudtrail-read") as pool:
        texts = _ahead(pool, _unpack, files, 2 * workers)
        # A group per core parses side by side (each on one thread: measured faster than one
        # group at a time on Arrow's threads, whose GIL-bound steps then run one after another).
        parsers = min(workers, os.cpu_count() or 1)
        groups = _ahead(pool, lambda group: _parse(group, scope), _groups(texts), parsers)
        try:
            for count, batch in groups:
                calls += batch.table.num_rows
                if bar is not None:
                    bar.set_postfix_str(f"{calls:,} KMS calls", refresh=False)
                    bar.update(count)
                yield batch
        finally:
            groups.close()
            texts.close()
            if bar is not None:
                bar.close()


def _ahead(
    pool: ThreadPoolExecutor, work: Callable[[_In], _Out], items: Iterable[_In], depth: int
) -> Iterator[_Out]:
    """``work`` of each item on the pool, at most ``depth`` ahead, results in item order."""
    pending: deque[Future[_Out]] = deque()
    upcoming = iter(items)
    try:
        for item in upcoming:
            pending.append(pool.submit(work, item))
            if len(pending) >= depth:
                break
        while pending:
            result = pending.popleft().result()
            following = next(upcoming, None)
            if following is not None:
                pending.append(pool.submit(work, following))
            yield result
    finally:
        for future in pending:
            future.cancel()


def _unpack(log_file: LogFile) -> _Text:
    text = unpack(log_file.read(), log_file.name)
    line = records_line(text) if len(text) < GROUP_BYTES else None
    if line is None:
        return _Text(log_file.name, text, None)
    return _Text(log_file.name, *line)


def _groups(texts: Iterable[_Text]) -> Iterator[list[_Text]]:
    """Consecutive shareable files up to ``GROUP_BYTES`` together; any other file alone."""
    group: list[_Text] = []
    size = 0
    for text in texts:
        if text.keys is None:
            if group:
                yield group
                group, size = [], 0
            yield [text]
            continue
        group.append(text)
        size += len(text.text)
        if size >= GROUP_BYTES or len(group) >= GROUP_FILES:
            yield group
            group, size = [], 0
    if group:
        yield group


def _parse(group: list[_Text], scope: Scope) -> tuple[int, UsageBatch]:
    """The group's KMS calls in scope, and how many files it held."""
    if all(text.keys is not None for text in group):
        keys = [key for text in group for key in text.keys or ()]
        try:
            raw = read_documents([text.text for text in group], keys)
            return len(group), within(usage_batch(raw), scope)
        except pa.ArrowInvalid:
            pass  # a record Arrow cannot type: read each file on its own, which copes
    batches = [within(usage_batch(read_records(text.text, text.name)), scope) for text in group]
    return len(group), join_batches(batches) if len(batches) > 1 else batches[0]


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

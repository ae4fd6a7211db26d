"""The usage frame: one typed pandas row per KMS call found in CloudTrail records.

The columns are made in Arrow by ``batch.usage_batch`` (what each one holds is said there);
``frame_of`` turns a batch into pandas, with categoricals and a dict per encryption context.
"""

from __future__ import annotations

import gc
import html
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from emr_cmk_notebook.usage.batch import (
    CATEGORY_COLUMNS,
    COLUMNS,
    CONTEXT_PREFIX,
    KMS_EVENT_SOURCE,
    UsageBatch,
    headline,
    iso_texts,
    join_batches,
    usage_batch,
)
from emr_cmk_notebook.usage.records import RawRecords, read_records
from emr_cmk_notebook.usage.trail_files import read_local

__all__ = [
    "CATEGORY_COLUMNS",
    "COLUMNS",
    "CONTEXT_PREFIX",
    "KMS_EVENT_SOURCE",
    "UsageBatch",
    "UsageFrame",
    "frame_of",
    "headline",
    "iso_time",
    "iso_times",
    "join_batches",
    "parse_records",
    "read_file",
    "usage_batch",
    "usage_frame",
]
_HTML_ROWS = 20


@dataclass
class UsageFrame:
    """KMS calls from CloudTrail as a DataFrame, with what was skipped on the way."""

    frame: pd.DataFrame
    skipped_non_kms: int = 0
    skipped_malformed: int = 0

    @property
    def kms_records(self) -> int:
        """How many KMS records became rows."""
        return len(self.frame)

    @property
    def time_range(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The first and last event time, or None when there are no rows."""
        if self.frame.empty:
            return None
        times = self.frame["event_time"]
        return times.min(), times.max()

    def summary(self) -> dict[str, Any]:
        """Counts, skipped counts, time range and calls per event name, as plain data."""
        first, last = self.time_range or (None, None)
        names = self.frame["event_name"].value_counts()
        return {
            "kms_records": self.kms_records,
            "skipped_non_kms": self.skipped_non_kms,
            "skipped_malformed": self.skipped_malformed,
            "first_event": None if first is None else iso_time(first),
            "last_event": None if last is None else iso_time(last),
            "event_names": {str(name): int(count) for name, count in names.items() if count},
        }

    def rows(self) -> list[dict[str, Any]]:
        """The rows as JSON-ready dicts: ISO 8601 UTC times, contexts as dicts, None for gaps."""
        plain = self.frame.astype(object)
        plain = plain.where(self.frame.notna(), None)
        plain["event_time"] = iso_times(self.frame["event_time"]).to_numpy(dtype=object)
        return plain.to_dict("records")

    def to_frame(self) -> pd.DataFrame:
        """The DataFrame, one row per KMS call."""
        return self.frame

    def to_dict(self) -> dict[str, Any]:
        """The summary plus every row, as plain data."""
        return {**self.summary(), "rows": self.rows()}

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.headline())}</p>" + self.frame.head(_HTML_ROWS).to_html()

    def headline(self) -> str:
        """One line: how many KMS records, how many skipped, and the time range."""
        return headline(self.summary())


def parse_records(source: Any, *, name: str | None = None) -> UsageFrame:
    """Read CloudTrail records into a ``UsageFrame`` of the KMS calls among them.

    ``source`` is a path (``os.PathLike``, or a ``str`` that does not start like JSON), the bytes
    or text of a CloudTrail log file (``{"Records": [...]}``, gzip or not), of a LookupEvents
    response (``{"Events": [...]}``) or of JSON lines, a parsed document of either kind, or a list
    of records (dicts, their JSON text, or LookupEvents items). ``name`` labels error messages.
    """
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and source.lstrip()[:1] not in ("", "{", "[")
    ):
        return read_file(source)
    return usage_frame(read_records(source, name or "records"))


def read_file(path: str | os.PathLike[str]) -> UsageFrame:
    """Read a CloudTrail log file (gzip or not), a LookupEvents response or JSON lines."""
    return usage_frame(read_records(read_local(Path(path)), str(path)))


def usage_frame(raw: RawRecords) -> UsageFrame:
    """Keep the KMS records of ``raw`` with a valid time and turn them into a ``UsageFrame``."""
    return frame_of(usage_batch(raw))


def frame_of(batch: UsageBatch) -> UsageFrame:
    """A batch as a ``UsageFrame``: categoricals where values repeat, a dict per context."""
    table = batch.table
    for name in CATEGORY_COLUMNS:
        position = table.schema.get_field_index(name)
        table = table.set_column(position, name, pc.dictionary_encode(table.column(name)))
    with _collector_paused():
        frame = table.to_pandas(types_mapper=_pandas_type, maps_as_pydicts="strict")
    return UsageFrame(frame, batch.skipped_non_kms, batch.skipped_malformed)


def iso_time(moment: pd.Timestamp) -> str:
    """``moment`` as ISO 8601 UTC text, ``2026-03-01T08:00:00Z`` as CloudTrail writes it."""
    return iso_times(pd.Series([moment]))[0]


def iso_times(times: pd.Series) -> pd.Series:
    """UTC timestamps as ISO 8601 text; fractions of a second only where there are some."""
    moments = pa.Array.from_pandas(times).cast(pa.timestamp("us", tz="UTC"), safe=False)
    text = iso_texts(moments)
    return pd.Series(text.to_numpy(zero_copy_only=False), index=times.index, dtype=object)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cycle collector: a dict per row cannot form cycles, rescanning them is waste."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _pandas_type(arrow_type: pa.DataType) -> Any:
    return pd.BooleanDtype() if arrow_type == pa.bool_() else None

"""The usage frame: one typed pandas row per KMS call found in CloudTrail records.

``principal_arn`` is ``userIdentity.arn`` as CloudTrail wrote it: the user or role ARN, the
``assumed-role`` session ARN for ``AssumedRole``, and None for ``AWSService`` callers (which
have no ARN; ``invoked_by`` then names the service, ``"AWS Internal"`` for EMR Serverless).
``key_arn`` is ``requestParameters.keyId`` when that is a key ARN, else the first key ARN in
``resources`` (Decrypt records usually carry no ``keyId``; callers may name an alias or a bare id).
A resource is taken as a KMS key by its ARN (``arn:...:kms:...:key/...``), which is what its
``type`` (``AWS::KMS::Key``, absent in some records) would say.
Rows keep the order of the input.
"""

from __future__ import annotations

import gc
import html
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from emr_cmk_notebook.usage.records import RawRecords, read_records, record_schema
from emr_cmk_notebook.usage.trail_files import read_local

KMS_EVENT_SOURCE = "kms.amazonaws.com"
CONTEXT_PREFIX = "ctx."
COLUMNS: tuple[str, ...] = (
    "event_time",
    "event_name",
    "event_id",
    "key_arn",
    "aws_region",
    "identity_type",
    "principal_arn",
    "invoked_by",
    "source_ip",
    "user_agent",
    "application_id",
    "encryption_context",
    "error_code",
    "recipient_account_id",
    "shared_event_id",
    "error_message",
    "read_only",
    "account_id",
)
CATEGORY_COLUMNS = frozenset(
    {
        "event_name",
        "key_arn",
        "aws_region",
        "identity_type",
        "principal_arn",
        "invoked_by",
        "source_ip",
        "user_agent",
        "application_id",
        "error_code",
        "recipient_account_id",
        "account_id",
    }
)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_TIME_TYPE = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HTML_ROWS = 20
_NO_RECORDS = RawRecords(record_schema(()).empty_table(), ())


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


def headline(summary: dict[str, Any]) -> str:
    """One line from a summary: how many KMS records, how many skipped, and the time range."""
    text = (
        f"{summary['kms_records']} KMS records; skipped {summary['skipped_non_kms']} non-KMS"
        f" and {summary['skipped_malformed']} malformed"
    )
    if summary["first_event"]:
        text += f"; {summary['first_event']} to {summary['last_event']}"
    return text


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


@dataclass
class UsageBatch:
    """KMS calls as an Arrow table in the usage frame's columns, with what was skipped."""

    table: pa.Table
    skipped_non_kms: int = 0
    skipped_malformed: int = 0

    def to_usage_frame(self) -> UsageFrame:
        """The batch as a ``UsageFrame`` (pandas, categoricals, a dict per context)."""
        with _collector_paused():
            frame = self.table.to_pandas(types_mapper=_pandas_type, maps_as_pydicts="strict")
        return UsageFrame(frame, self.skipped_non_kms, self.skipped_malformed)


def usage_frame(raw: RawRecords) -> UsageFrame:
    """Keep the KMS records of ``raw`` with a valid time and turn them into a ``UsageFrame``."""
    return usage_batch(raw).to_usage_frame()


def usage_batch(raw: RawRecords) -> UsageBatch:
    """Keep the KMS records of ``raw`` with a valid time, as an Arrow ``UsageBatch``."""
    table = raw.table
    times = _event_times(table.column("eventTime"))
    source = table.column("eventSource")
    valid = pc.and_(pc.is_valid(source), pc.is_valid(times))
    kms = pc.and_(valid, pc.fill_null(pc.equal(source, KMS_EVENT_SOURCE), False))
    valid_count, kms_count = _count(valid), _count(kms)
    # take() gathers the kept rows into one chunk per column in one pass.
    rows = pc.indices_nonzero(kms)
    return UsageBatch(
        _columns(table.take(rows), times.take(rows), raw.context_keys),
        skipped_non_kms=valid_count - kms_count,
        skipped_malformed=raw.malformed + table.num_rows - valid_count,
    )


def join_batches(batches: Iterable[UsageBatch]) -> UsageBatch:
    """One batch of many, rows in order; a context column missing from a batch is null there."""
    batches = list(batches)
    tables = [b.table for b in batches] or [usage_batch(_NO_RECORDS).table]
    return UsageBatch(
        pa.concat_tables(tables, promote_options="default"),
        skipped_non_kms=sum(b.skipped_non_kms for b in batches),
        skipped_malformed=sum(b.skipped_malformed for b in batches),
    )


def iso_time(moment: pd.Timestamp) -> str:
    """``moment`` as ISO 8601 UTC text, ``2026-03-01T08:00:00Z`` as CloudTrail writes it."""
    return iso_times(pd.Series([moment]))[0]


def iso_times(times: pd.Series) -> pd.Series:
    """UTC timestamps as ISO 8601 text; fractions of a second only where there are some."""
    text = times.dt.strftime("%Y-%m-%dT%H:%M:%S")
    micros = times.dt.microsecond
    fraction = ("." + micros.astype(str).str.zfill(6)).where(micros > 0, "")
    return text + fraction + "Z"


def _count(mask: pa.ChunkedArray) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _event_times(text: pa.ChunkedArray) -> pa.Array:
    """Parse ``eventTime``; null where it is not a time. CloudTrail writes one fixed format."""
    text = text.combine_chunks()
    times = pc.strptime(text, format=_TIME_FORMAT, unit="s", error_is_null=True).cast(_TIME_TYPE)
    retry = pc.and_(pc.is_null(times), pc.is_valid(text))
    if not pc.any(retry).as_py():
        return times
    micros = pc.fill_null(times.cast(pa.int64()), 0).to_numpy().copy()
    present = times.is_valid().to_numpy(zero_copy_only=False).copy()
    for index in np.flatnonzero(retry.to_numpy(zero_copy_only=False)):
        moment = _parse_iso(text[index].as_py())
        if moment is not None:
            micros[index], present[index] = moment, True
    return pa.array(micros, mask=~present).cast(_TIME_TYPE)


def _parse_iso(text: str) -> int | None:
    """Microseconds since the epoch for other ISO 8601 spellings (fractions, offsets)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _columns(table: pa.Table, times: pa.Array, context_keys: tuple[str, ...]) -> pa.Table:
    identity = table.column("userIdentity")
    params = table.column("requestParameters")
    context = pc.struct_field(params, "encryptionContext")
    # Keys seen only outside KMS records (or only in skipped ones) get no column.
    contexts = {
        key: column
        for key in context_keys
        if (column := _single(pc.struct_field(context, key))).null_count < len(column)
    }
    no_text = pa.nulls(table.num_rows, pa.string())
    columns = {
        "event_time": times,
        "event_name": table.column("eventName"),
        "event_id": table.column("eventID"),
        "key_arn": _key_arns(pc.struct_field(params, "keyId"), table.column("resources")),
        "aws_region": table.column("awsRegion"),
        "identity_type": pc.struct_field(identity, "type"),
        "principal_arn": pc.struct_field(identity, "arn"),
        "invoked_by": pc.struct_field(identity, "invokedBy"),
        "source_ip": table.column("sourceIPAddress"),
        "user_agent": table.column("userAgent"),
        "application_id": contexts.get("applicationId", no_text),
        "encryption_context": _context_maps(_single(context), contexts),
        "error_code": table.column("errorCode"),
        "recipient_account_id": table.column("recipientAccountId"),
        "shared_event_id": table.column("sharedEventID"),
        "error_message": table.column("errorMessage"),
        "read_only": table.column("readOnly"),
        "account_id": pc.struct_field(identity, "accountId"),
    }
    columns.update((CONTEXT_PREFIX + key, column) for key, column in contexts.items())
    return pa.table(
        {
            name: pc.dictionary_encode(column) if name in CATEGORY_COLUMNS else column
            for name, column in columns.items()
        }
    )


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


def _single(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks()
    return column


def _key_arns(key_ids: pa.ChunkedArray, resources: pa.ChunkedArray) -> pa.Array:
    """``keyId`` when it is a key ARN, else the first key ARN listed in ``resources``."""
    key_ids = _single(key_ids)
    named = pc.if_else(_is_key_arn(key_ids), key_ids, pa.scalar(None, pa.string()))
    resources = _single(resources)
    arns = pc.struct_field(pc.list_flatten(resources), "ARN")
    is_key = _is_key_arn(arns)
    parents = pc.list_parent_indices(resources).to_numpy()
    rows, first = np.unique(parents[is_key.to_numpy(zero_copy_only=False)], return_index=True)
    index = np.full(len(key_ids), -1, dtype=np.int64)
    index[rows] = first
    listed = arns.filter(is_key).take(pa.array(index, mask=index < 0))
    return pc.coalesce(named, listed)


def _is_key_arn(text: pa.Array) -> pa.Array:
    """True for ``arn:PARTITION:kms:REGION:ACCOUNT:key/ID``, never null (aliases are not keys)."""
    return pc.fill_null(
        pc.and_(
            pc.and_(pc.starts_with(text, "arn:"), pc.match_substring(text, ":kms:")),
            pc.match_substring(text, ":key/"),
        ),
        False,
    )


def _context_maps(context: pa.Array, columns: dict[str, pa.Array]) -> pa.MapArray:
    """One map per row holding only the context pairs that record had (null: no context)."""
    rows, width = len(context), len(columns)
    present = np.zeros((rows, width), dtype=bool)
    for position, column in enumerate(columns.values()):
        present[:, position] = column.is_valid().to_numpy(zero_copy_only=False)
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(present.sum(axis=1), out=offsets[1:])
    chosen = present.ravel()
    key_positions = np.tile(np.arange(width), rows)[chosen]
    # Values of all columns end to end: column p, row r sits at p * rows + r.
    value_positions = (np.arange(width)[None, :] * rows + np.arange(rows)[:, None]).ravel()[chosen]
    keys = pa.array(list(columns), pa.string()).take(pa.array(key_positions, pa.int64()))
    values = pa.concat_arrays([*columns.values()] or [pa.array([], pa.string())])
    return pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()),
        keys,
        values.take(pa.array(value_positions, pa.int64())),
        mask=context.is_null(),
    )

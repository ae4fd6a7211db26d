"""KMS calls in Arrow: CloudTrail records reduced to the usage frame's columns, batch by batch.

``principal_arn`` is ``userIdentity.arn`` as CloudTrail wrote it: the user or role ARN, the
``assumed-role`` session ARN for ``AssumedRole``, and None for ``AWSService`` callers (which
have no ARN; ``invoked_by`` then names the service, ``"AWS Internal"`` for EMR Serverless).
``key_arn`` is ``requestParameters.keyId`` when that is a key ARN, else the first key ARN in
``resources`` (Decrypt records usually carry no ``keyId``; callers may name an alias or a bare id).
A resource is taken as a KMS key by its ARN (``arn:...:kms:...:key/...``), which is what its
``type`` (``AWS::KMS::Key``, absent in some records) would say.
Rows keep the order of the input. Nothing here needs pandas: ``frame.frame_of`` makes the
pandas frame (categoricals, a dict per context) when one is wanted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from emr_cmk_notebook.usage.records import RawRecords, record_schema

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


@dataclass
class UsageBatch:
    """KMS calls as an Arrow table in the usage frame's columns, with what was skipped."""

    table: pa.Table
    skipped_non_kms: int = 0
    skipped_malformed: int = 0


def headline(summary: dict[str, Any]) -> str:
    """One line from a summary: how many KMS records, how many skipped, and the time range."""
    text = (
        f"{summary['kms_records']} KMS records; skipped {summary['skipped_non_kms']} non-KMS"
        f" and {summary['skipped_malformed']} malformed"
    )
    if summary["first_event"]:
        text += f"; {summary['first_event']} to {summary['last_event']}"
    return text


def usage_batch(raw: RawRecords) -> UsageBatch:
    """Keep the KMS records of ``raw`` with a valid time, as an Arrow ``UsageBatch``."""
    table = raw.table
    times = _event_times(table.column("eventTime"))
    source = table.column("eventSource")
    valid = pc.and_(pc.is_valid(source), pc.is_valid(times))
    kms = pc.and_(valid, pc.fill_null(pc.equal(source, KMS_EVENT_SOURCE), False))
    valid_count, kms_count = _count(valid), _count(kms)
    total = table.num_rows
    if kms_count < total:
        # take() gathers the kept rows into one chunk per column in one pass.
        rows = pc.indices_nonzero(kms)
        table, times = table.take(rows), times.take(rows)
    return UsageBatch(
        _columns(table, times, raw.context_keys),
        skipped_non_kms=valid_count - kms_count,
        skipped_malformed=raw.malformed + total - valid_count,
    )


def join_batches(batches: Iterable[UsageBatch]) -> UsageBatch:
    """One batch of many, rows in order; a context column missing from a batch is null there."""
    batches = list(batches)
    # Table.from_batches, not Schema.empty_table: the latter imports pandas.
    no_records = RawRecords(pa.Table.from_batches([], record_schema(())), ())
    tables = [b.table for b in batches] or [usage_batch(no_records).table]
    return UsageBatch(
        pa.concat_tables(tables, promote_options="default"),
        skipped_non_kms=sum(b.skipped_non_kms for b in batches),
        skipped_malformed=sum(b.skipped_malformed for b in batches),
    )


def iso_texts(times: pa.Array | pa.ChunkedArray) -> pa.Array:
    """UTC timestamps as ISO 8601 text, ``2026-03-01T08:00:00Z`` as CloudTrail writes it, with
    a fraction of a second only where there is one."""
    times = _single(times).cast(_TIME_TYPE)
    whole = pc.floor_temporal(times, unit="second")
    fraction = pc.subtract(times.cast(pa.int64()), whole.cast(pa.int64()))
    whole = whole.cast(pa.timestamp("s", tz="UTC"))
    digits = pc.utf8_lpad(fraction.cast(pa.string()), width=6, padding="0")
    shown = pc.if_else(pc.greater(fraction, 0), pc.binary_join_element_wise(".", digits, ""), "")
    text = pc.strftime(whole, format="%Y-%m-%dT%H:%M:%S")
    return pc.binary_join_element_wise(text, shown, "Z", "")


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
    return pa.table(columns)


def _single(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks()
    return column


def _key_arns(key_ids: pa.ChunkedArray, resources: pa.ChunkedArray) -> pa.Array:
    """``keyId`` when it is a key ARN, else the first key ARN listed in ``resources``."""
    key_ids = _single(key_ids)
    named = pc.if_else(_is_key_arn(key_ids), key_ids, pa.scalar(None, pa.string()))
    if named.null_count == 0:
        return named
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

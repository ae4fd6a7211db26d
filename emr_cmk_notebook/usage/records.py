"""CloudTrail records, in any of the forms AWS hands them out, to one Arrow table.

The fast route never builds a Python object per record: the bytes go straight to
``pyarrow.json.read_json`` with an explicit schema of the few fields the usage frame needs (every
other field is skipped, so records of other services cannot upset type inference). Encryption
context keys are arbitrary, so they are found first with a byte-level scan and become the fields of
the ``encryptionContext`` struct. When the bytes are not clean (a non-JSON line, a record that is
not an object, a field of an unexpected type), the records are decoded one by one, the bad ones
counted and dropped, the good ones reduced to the known fields and handed to Arrow again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json
from isal import isal_zlib

from emr_cmk_notebook.core.errors import UserError

# The most one CloudTrail input may hold once unpacked: far past any log file CloudTrail
# delivers, and a bound on what /dev/zero or a gzip bomb can make this read.
MAX_LOG_BYTES = 512 << 20
_STRING_FIELDS = (
    "eventTime",
    "eventSource",
    "eventName",
    "eventID",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "recipientAccountId",
    "sharedEventID",
)
_IDENTITY_FIELDS = ("type", "arn", "accountId", "invokedBy")
_RESOURCE_FIELDS = ("ARN",)

# JSON lines are read in blocks of this size; one record must fit in a block (CloudTrail caps a
# record at 256 KB).
_BLOCK_SIZE = 4 << 20

_RECORDS_START = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[')
_DOCUMENT_START = re.compile(rb'\s*(\[|\{\s*"(Events|NextToken|ResponseMetadata)"\s*:)')
# Between two records of a Records array; anchored on the first field CloudTrail writes.
_RECORD_BOUNDARY = re.compile(rb'\}\s*,\s*\{\s*"eventVersion"')
_COMPACT_BOUNDARY = b'},{"eventVersion"'
_LINE_BOUNDARY = b'}\n{"eventVersion"'
_CONTEXT_BODY = re.compile(rb'"encryptionContext"\s*:\s*\{([^}]*)\}')
# A key in a context body; bodies with a backslash never get here (see ``_context_keys``).
_JSON_KEY = re.compile(rb'"([^"]*)"\s*:')
_BLANK = re.compile(rb"\s*")
_BOM = b"\xef\xbb\xbf"


@dataclass
class RawRecords:
    """One row per candidate record, with only the fields the usage frame reads."""

    table: pa.Table
    context_keys: tuple[str, ...]
    malformed: int = 0


def record_schema(context_keys: Iterable[str]) -> pa.Schema:
    """The Arrow schema of a CloudTrail record as far as the usage frame reads it."""
    text = pa.string()
    return pa.schema(
        [(name, text) for name in _STRING_FIELDS]
        + [
            ("readOnly", pa.bool_()),
            ("userIdentity", pa.struct([(name, text) for name in _IDENTITY_FIELDS])),
            (
                "requestParameters",
                pa.struct(
                    [
                        ("keyId", text),
                        ("encryptionContext", pa.struct([(key, text) for key in context_keys])),
                    ]
                ),
            ),
            ("resources", pa.list_(pa.struct([(name, text) for name in _RESOURCE_FIELDS]))),
        ]
    )


def read_records(source: Any, name: str) -> RawRecords:
    """Decode bytes, JSON text, a parsed document or a list of records into ``RawRecords``."""
    if isinstance(source, bytes | bytearray | memoryview):
        return _from_bytes(bytes(source), name)
    if isinstance(source, str):
        return _from_bytes(source.encode(), name)
    if isinstance(source, Mapping):
        return _from_document(source, name)
    if isinstance(source, Iterable):
        return _from_objects(source)
    raise UserError(
        f"{name}: cannot read CloudTrail records from a {type(source).__name__}",
        hint="pass a file path, bytes, a Records/Events document or a list of records",
    )


def unpack(data: bytes, name: str) -> bytes:
    """The text of a log file's bytes: gunzipped when gzip, without a byte order mark."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, name)
    return data.removeprefix(_BOM)


def records_line(data: bytes) -> tuple[bytes, tuple[str, ...]] | None:
    """An unpacked ``{"Records": [...]}`` file as one line, with its context keys, ready for
    ``read_documents``; None when it is another form or a context is too odd to scan."""
    if not _RECORDS_START.match(data) or _array_end(data) is None:
        return None
    keys = _context_keys(data)
    if keys is None:
        return None
    if b"\n" in data or b"\r" in data:
        # Raw line breaks can only be whitespace in JSON.
        data = data.replace(b"\r", b" ").replace(b"\n", b" ")
    return data, keys


def read_documents(lines: Sequence[bytes], keys: Iterable[str]) -> RawRecords:
    """The records of several ``records_line`` files in one Arrow read, in order.

    Each file is one JSON line whose ``Records`` list Arrow reads with the record schema; one
    read for many small files saves the per-call cost that dominates files of a few hundred
    records. Raises ``pyarrow.ArrowInvalid`` when a file does not fit the schema (the caller
    then reads the files one by one, which copes with anything).
    """
    keys = tuple(sorted(set(keys)))
    schema = record_schema(keys)
    document = pa.schema([("Records", pa.list_(pa.struct(list(schema))))])
    table = pa_json.read_json(
        pa.BufferReader(b"\n".join(lines)),
        read_options=pa_json.ReadOptions(
            block_size=max(_BLOCK_SIZE, max((len(line) for line in lines), default=0) + 1),
            # Groups are parsed side by side on the caller's threads already.
            use_threads=False,
        ),
        parse_options=pa_json.ParseOptions(
            explicit_schema=document, unexpected_field_behavior="ignore"
        ),
    )
    records = table.column("Records").combine_chunks().flatten()
    return RawRecords(pa.Table.from_batches([pa.RecordBatch.from_struct_array(records)]), keys)


def _from_bytes(data: bytes, name: str) -> RawRecords:
    data = unpack(data, name)
    if not data or data.isspace():
        return _empty()
    if _RECORDS_START.match(data):
        records = _records_document(data)
        if records is not None:
            return records
        return _from_document(_json_document(data, name), name)
    if _DOCUMENT_START.match(data):
        document = _json_document(data, name)
        if isinstance(document, list):
            return _from_objects(document)
        return _from_document(document, name)
    return _from_json_lines(data, name)


def _gunzip(data: bytes, name: str) -> bytes:
    """Every gzip member of ``data``, unpacked (ISA-L: about twice zlib's speed), bounded."""
    parts: list[bytes] = []
    room = MAX_LOG_BYTES + 1
    try:
        while data and room > 0:
            unpacker = isal_zlib.decompressobj(31)
            parts.append(unpacker.decompress(data, room))
            room -= len(parts[-1])
            if not unpacker.eof:
                if room > 0:
                    raise isal_zlib.error("the gzip data ends early")
                break
            data = unpacker.unused_data.lstrip(b"\0")
    except isal_zlib.error as exc:
        raise UserError(f"{name}: gzip data is truncated or corrupt ({exc})") from None
    if room <= 0:
        raise UserError(too_large(name, "unpacks to more than"))
    return b"".join(parts)


def too_large(name: str, holds: str = "is larger than") -> str:
    """The one line for CloudTrail input past ``MAX_LOG_BYTES``."""
    return (
        f"{name}: {holds} {MAX_LOG_BYTES >> 20} MiB, more than one CloudTrail log file holds; "
        "read the trail's files one by one (a folder) or with --source athena"
    )


def _json_document(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{name}: not valid JSON at line {exc.lineno}, column {exc.colno}"
            f" (offset {exc.pos}): {exc.msg}",
            hint="is the file complete?",
        ) from None
    except ValueError as exc:
        raise UserError(f"{name}: not valid JSON ({exc})") from None


def _reason(exc: ValueError) -> str:
    return exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)


def _from_document(document: Mapping[str, Any], name: str) -> RawRecords:
    for key in ("Records", "Events"):
        if key in document:
            items = document[key]
            if not isinstance(items, list):
                raise UserError(f"{name}: {key} is not a list")
            return _from_objects(items)
    raise UserError(
        f"{name}: a JSON object with neither Records nor Events",
        hint="expected a CloudTrail log file, a LookupEvents response or JSON lines",
    )


def _from_json_lines(data: bytes, name: str) -> RawRecords:
    keys = _context_keys(data)
    if keys is not None:
        try:
            return RawRecords(_read(data, record_schema(keys)), keys)
        except pa.ArrowInvalid:
            pass
    items: list[Any] = []
    malformed = 0
    first_error: tuple[int, ValueError] | None = None
    for number, line in enumerate(data.splitlines(), 1):
        if not line or line.isspace():
            continue
        try:
            items.append(json.loads(line))
        except ValueError as exc:
            malformed += 1
            first_error = first_error or (number, exc)
    if first_error and not items:
        number, exc = first_error
        raise UserError(
            f"{name}: not JSON (line {number}: {_reason(exc)})",
            hint="expected a CloudTrail log file, a LookupEvents response or JSON lines",
        )
    records = _from_objects(items)
    records.malformed += malformed
    return records


def _records_document(data: bytes) -> RawRecords | None:
    """Parse a ``{"Records": [...]}`` file with Arrow, or None when only a full decode will do.

    The array becomes JSON lines by putting a line break between records. A break that lands
    inside a string or a nested array makes the JSON invalid, so Arrow refuses it and the caller
    falls back to a full decode: a wrong guess costs time, never correctness.
    """
    line = records_line(data)
    if line is None:
        return None
    # One line; Arrow needs one record per line.
    data, keys = line
    first = _RECORD_BOUNDARY.search(data)
    if first is not None and first.group(0) == _COMPACT_BOUNDARY:
        data = data.replace(_COMPACT_BOUNDARY, _LINE_BOUNDARY)
    else:
        data = _RECORD_BOUNDARY.sub(_LINE_BOUNDARY, data)
    start, end = _RECORDS_START.match(data), _array_end(data)
    if start is None or end is None or _BLANK.match(data, start.end(), end).end() == end:
        return None
    body = pa.py_buffer(data).slice(start.end(), end - start.end())
    try:
        return RawRecords(_read(body, record_schema(keys)), keys)
    except pa.ArrowInvalid:
        return None


def _array_end(data: bytes) -> int | None:
    """The offset of the ``]`` that closes the Records array, if the file ends ``]}``."""
    end = len(data)
    for expected in (b"}", b"]"):
        end -= 1
        while end >= 0 and data[end : end + 1].isspace():
            end -= 1
        if end < 0 or data[end : end + 1] != expected:
            return None
    return end


def _context_keys(data: bytes) -> tuple[str, ...] | None:
    """Every encryption context key in ``data``; None when a context is too odd to scan."""
    keys: set[str] = set()
    for body in set(_CONTEXT_BODY.findall(data)):
        # A backslash or an odd number of quotes means a "}" inside a string cut the match short.
        if b"\\" in body or body.count(b'"') % 2:
            return None
        keys.update(key.decode("utf-8", "replace") for key in _JSON_KEY.findall(body))
    return tuple(sorted(keys))


def _read(data: bytes | pa.Buffer, schema: pa.Schema) -> pa.Table:
    return pa_json.read_json(
        pa.BufferReader(data),
        read_options=pa_json.ReadOptions(block_size=_BLOCK_SIZE),
        parse_options=pa_json.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"
        ),
    )


def _from_objects(items: Iterable[Any]) -> RawRecords:
    """Reduce decoded records to the known fields (dropping malformed ones) and read them."""
    lines: list[str] = []
    keys: set[str] = set()
    malformed = 0
    for item in items:
        record = _decode(item)
        clean = _clean(record) if isinstance(record, dict) else None
        if clean is None:
            malformed += 1
            continue
        context = clean.get("requestParameters", {}).get("encryptionContext")
        if context:
            keys.update(context)
        lines.append(json.dumps(clean, separators=(",", ":")))
    if not lines:
        return _empty(malformed)
    ordered = tuple(sorted(keys))
    return RawRecords(_read("\n".join(lines).encode(), record_schema(ordered)), ordered, malformed)


def _decode(item: Any) -> Any:
    """A record from a record dict, its JSON text, or a LookupEvents item."""
    if isinstance(item, Mapping) and "eventSource" not in item:
        item = item.get("CloudTrailEvent", item)
    if isinstance(item, str | bytes):
        try:
            return json.loads(item)
        except ValueError:
            return None
    return item


def _clean(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The known fields of ``record`` that have the expected type; None when it is malformed."""
    if not isinstance(record.get("eventSource"), str) or not isinstance(
        record.get("eventTime"), str
    ):
        return None
    clean: dict[str, Any] = _strings(record, _STRING_FIELDS)
    if isinstance(record.get("readOnly"), bool):
        clean["readOnly"] = record["readOnly"]
    identity = record.get("userIdentity")
    if isinstance(identity, Mapping):
        clean["userIdentity"] = _strings(identity, _IDENTITY_FIELDS)
    params = record.get("requestParameters")
    if isinstance(params, Mapping):
        clean["requestParameters"] = _strings(params, ("keyId",))
        context = params.get("encryptionContext")
        if isinstance(context, Mapping):
            clean["requestParameters"]["encryptionContext"] = {
                str(key): value for key, value in context.items() if isinstance(value, str)
            }
    resources = record.get("resources")
    if isinstance(resources, list):
        clean["resources"] = [
            _strings(item, _RESOURCE_FIELDS) for item in resources if isinstance(item, Mapping)
        ]
    return clean


def _strings(mapping: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, str]:
    return {field: mapping[field] for field in fields if isinstance(mapping.get(field), str)}


def _empty(malformed: int = 0) -> RawRecords:
    return RawRecords(record_schema(()).empty_table(), (), malformed)

"""A Spark DataFrame on a Livy session brought back as pandas through Arrow IPC.

The session turns the first ``rows`` rows into one Arrow IPC stream (lz4-compressed), base64 text,
and hands it out in chunks, one statement output each, so that no output comes near Livy's
limit on a message from the session (``livy.rsc.rpc.max.size``, 50 MiB by default). The kernel
joins the chunks and builds the frame with exact dtypes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emr_cmk_notebook.core.errors import UserError

# What the encoded result is kept under on the session until its last chunk is read.
ENCODED = "_emr_cmk_arrow"

PREPARE = """\
import base64 as _emr_cmk_base64
import json as _emr_cmk_json
import pyarrow as _emr_cmk_pa
try:
    if not (hasattr({holder}, "schema") and hasattr({holder}, "limit")):
        raise TypeError(
            "-o needs the cell to end with a Spark DataFrame, not " + type({holder}).__name__
        )
    _emr_cmk_cut = {holder}.limit({rows} + 1)
    if hasattr(_emr_cmk_cut, "toArrow"):
        _emr_cmk_table = _emr_cmk_cut.toArrow()
    else:
        from pyspark.sql.pandas.types import to_arrow_schema as _emr_cmk_schema
        _emr_cmk_table = _emr_cmk_pa.Table.from_batches(
            _emr_cmk_cut._collect_as_arrow(), schema=_emr_cmk_schema(_emr_cmk_cut.schema)
        )
    _emr_cmk_head = {{"rows": min(_emr_cmk_table.num_rows, {rows}), "total": None}}
    if _emr_cmk_table.num_rows > {rows}:
        _emr_cmk_table = _emr_cmk_table.slice(0, {rows})
        _emr_cmk_head["total"] = {holder}.count()
    _emr_cmk_head["bytes"] = _emr_cmk_table.nbytes
    {encoded} = ""
    if _emr_cmk_table.nbytes <= {cap}:
        _emr_cmk_sink = _emr_cmk_pa.BufferOutputStream()
        _emr_cmk_options = _emr_cmk_pa.ipc.IpcWriteOptions(compression="lz4")
        with _emr_cmk_pa.ipc.new_stream(
            _emr_cmk_sink, _emr_cmk_table.schema, options=_emr_cmk_options
        ) as _emr_cmk_writer:
            _emr_cmk_writer.write_table(_emr_cmk_table)
        {encoded} = _emr_cmk_base64.b64encode(_emr_cmk_sink.getvalue()).decode("ascii")
    _emr_cmk_head["chunks"] = max(1, -(-len({encoded}) // {chunk}))
    print(_emr_cmk_json.dumps(_emr_cmk_head))
    print({encoded}[:{chunk}])
finally:
    del {holder}
    for _emr_cmk_name in ("_emr_cmk_cut", "_emr_cmk_table", "_emr_cmk_sink", "_emr_cmk_writer"):
        globals().pop(_emr_cmk_name, None)
"""
CHUNK = "print({encoded}[{start}:{end}])"
FORGET = "del {encoded}"


class ResultTooLarge(UserError):
    """A result over the byte cap: nothing was brought back."""


@dataclass
class ArrowResult:
    """The frame brought back, how many rows it has and how many the DataFrame had."""

    frame: Any
    rows: int
    # The DataFrame's row count when it was cut; None when every row came back.
    total: int | None

    def notice(self) -> str | None:
        """One line saying the result was cut, or None."""
        if self.total is None:
            return None
        return f"{self.rows:,} of {self.total:,} rows; -n N for more"


def fetch(
    run: Callable[[str], str],
    holder: str,
    rows: int,
    *,
    max_bytes: int,
    chunk_bytes: int,
) -> ArrowResult:
    """The DataFrame kept under ``holder`` on the session as pandas: ``run`` runs one statement
    and returns its text output; ``max_bytes`` caps the result's Arrow size (uncompressed), and
    each statement output carries at most ``chunk_bytes`` characters of it."""
    code = PREPARE.format(
        holder=holder, rows=int(rows), cap=int(max_bytes), chunk=int(chunk_bytes), encoded=ENCODED
    )
    head_line, _, first = run(code).partition("\n")
    head = json.loads(head_line)
    if not first:
        run(FORGET.format(encoded=ENCODED))
        raise ResultTooLarge(
            f"the result is {_size(head['bytes'])} ({head['rows']:,} rows), over the "
            f"{_size(max_bytes)} cap; nothing was brought back",
            hint="bring fewer rows with -n or fewer columns, or raise "
            "%config EmrCmk.max_result_bytes",
        )
    parts = [first]
    for index in range(1, head["chunks"]):
        start = index * chunk_bytes
        parts.append(run(CHUNK.format(encoded=ENCODED, start=start, end=start + chunk_bytes)))
    run(FORGET.format(encoded=ENCODED))
    frame = arrow_frame(_read_stream("".join(parts)))
    return ArrowResult(frame=frame, rows=head["rows"], total=head["total"])


def _read_stream(encoded: str) -> Any:
    import base64

    import pyarrow as pa

    with pa.ipc.open_stream(base64.b64decode(encoded)) as reader:
        return reader.read_all()


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if count < 1024:
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count:,.1f} GiB"


def arrow_frame(table: Any) -> Any:
    """An Arrow table as pandas with exact dtypes: int64/float64/bool stay native, instants are
    ``datetime64[us, UTC]``, integers and booleans with nulls become nullable (``Int64``,
    ``boolean``), strings, decimals, dates and nested values are Python objects (lists, dicts)."""
    import pandas as pd
    import pyarrow as pa

    frame = table.to_pandas()
    for index, column in enumerate(table.columns):
        kind = column.type
        if column.null_count and (pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
            nullable = pd.api.types.pandas_dtype(_NULLABLE.get(str(kind), "Int64"))
            frame.isetitem(index, column.to_pandas(types_mapper=lambda _, d=nullable: d))
        elif pa.types.is_timestamp(kind) and kind.tz and kind.tz != "UTC":
            # Spark writes instants in the session's time zone; the same instants, in UTC.
            frame.isetitem(index, frame.iloc[:, index].dt.tz_convert("UTC"))
        elif _nested(kind):
            frame.isetitem(
                index, pd.Series([_python(v, kind) for v in column.to_pylist()], dtype=object)
            )
    return frame


_NULLABLE = {
    "int8": "Int8",
    "int16": "Int16",
    "int32": "Int32",
    "int64": "Int64",
    "bool": "boolean",
}


def _nested(kind: Any) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_map(kind)
        or pa.types.is_struct(kind)
    )


def _python(value: Any, kind: Any) -> Any:
    """A nested Arrow value as plain Python: maps as dicts (Arrow gives key/value pairs)."""
    import pyarrow as pa

    if value is None:
        return None
    if pa.types.is_map(kind):
        return {k: _python(v, kind.item_type) for k, v in value}
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return [_python(v, kind.value_type) for v in value]
    if pa.types.is_struct(kind):
        return {kind.field(i).name: _python(value[kind.field(i).name], kind.field(i).type)
                for i in range(kind.num_fields)}  # fmt: skip
    return value

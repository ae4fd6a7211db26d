"""Benchmark: how fast the JSON parse alone can go, next to ``emr-cmk usage parse`` and the naive
script, on ``usage_folder.py``'s workloads, in the same run.

A *floor* process does nothing but read the records and parse the fields the usage table needs
(no KMS filter, no columns, no output beyond a count), given the easiest input there is:

- ``arrow``: ``pyarrow.json.read_json`` with an explicit schema (the one ``emr-cmk`` uses, its
  encryption context keys given, so no key scan), on all cores; the file workload gets its
  records already as JSON lines (turning the ``Records`` array into lines is not counted); the
  folder's gzip files are unpacked (ISA-L) and parsed on a thread pool, a file per read;
- ``duckdb`` (when installed): ``read_ndjson`` with explicit columns (the context as a MAP), on
  all cores, on the same records already as JSON lines (gzip JSON lines for the folder, which
  DuckDB unpacks itself).

When a floor process alone is not ``NEEDED`` times faster than the naive script, no command built
on that parser can be. Our command and the naive script are those of ``usage_folder.py``.

    python benchmarks/usage_floor.py [--repeat N] [--only folder,file] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from usage_folder import (
    FOLDER_FILES,
    NEEDED,
    SHALLOW_RECORDS,
    _naive,
    _ours,
    _run,
    _summarise,
    write_folder,
    write_shallow_file,
)

# The context keys of the two workloads (usage_parse.py's records), so the floor needs no scan.
CONTEXT_KEYS = [
    "SecretARN",
    "SecretVersionId",
    "applicationId",
    "aws:dynamodb:subscriberId",
    "aws:dynamodb:tableName",
    "team",
]

ARROW_FILE = """
import sys
import pyarrow.json as pa_json
from emr_cmk_notebook.usage.records import record_schema
options = pa_json.ParseOptions(
    explicit_schema=record_schema(sys.argv[2:]), unexpected_field_behavior="ignore"
)
print(pa_json.read_json(sys.argv[1], parse_options=options).num_rows)
"""

ARROW_FOLDER = """
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import pyarrow as pa
import pyarrow.json as pa_json
from isal import isal_zlib
from emr_cmk_notebook.usage.records import record_schema
document = pa.schema([("Records", pa.list_(pa.struct(list(record_schema(sys.argv[2:])))))])
options = pa_json.ParseOptions(explicit_schema=document, unexpected_field_behavior="ignore")

def parse(path):
    text = isal_zlib.decompress(path.read_bytes(), 31)
    read = pa_json.ReadOptions(block_size=len(text) + 1, use_threads=False)
    return pa_json.read_json(pa.BufferReader(text), read_options=read, parse_options=options)

with ThreadPoolExecutor() as pool:
    tables = pool.map(parse, sorted(Path(sys.argv[1]).rglob("*.json.gz")))
    print(sum(len(table.column("Records").combine_chunks().flatten()) for table in tables))
"""

DUCKDB = """
import sys
import duckdb
text = "VARCHAR"
columns = {name: text for name in (
    "eventTime", "eventSource", "eventName", "eventID", "awsRegion", "sourceIPAddress",
    "userAgent", "errorCode", "errorMessage", "recipientAccountId", "sharedEventID")}
columns.update(
    readOnly="BOOLEAN",
    userIdentity="STRUCT(type VARCHAR, arn VARCHAR, accountId VARCHAR, invokedBy VARCHAR)",
    requestParameters="STRUCT(keyId VARCHAR, encryptionContext MAP(VARCHAR, VARCHAR))",
    resources="STRUCT(ARN VARCHAR)[]",
)
table = duckdb.read_json(sys.argv[1], format="newline_delimited", columns=columns)
print(table.to_arrow_table().num_rows)
"""


def json_lines(records_file: Path, target: Path, compress: bool = False) -> None:
    """The records of a ``{"Records": [...]}`` file as JSON lines (gzip when ``compress``)."""
    data = records_file.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    lines = "".join(
        json.dumps(record, separators=(",", ":")) + "\n" for record in json.loads(data)["Records"]
    ).encode()
    target.write_bytes(gzip.compress(lines, compresslevel=6) if compress else lines)


def floors(workload: str, path: Path, lines: Path) -> dict[str, list[str]]:
    """The floor commands for ``workload``: Arrow always, DuckDB when it is installed."""
    python = sys.executable
    if workload == "file":
        commands = {"arrow": [python, "-c", ARROW_FILE, str(lines), *CONTEXT_KEYS]}
    else:
        commands = {"arrow": [python, "-c", ARROW_FOLDER, str(path), *CONTEXT_KEYS]}
    if importlib.util.find_spec("duckdb") is not None:
        pattern = str(lines) if workload == "file" else str(lines / "*.json.gz")
        commands["duckdb"] = [python, "-c", DUCKDB, pattern]
    return commands


def measure(workload: str, path: Path, lines: Path, repeat: int) -> dict[str, Any]:
    """Every command on ``workload``, alternating, best wall time of ``repeat`` each."""
    commands = {"naive": _naive(path), "ours": _ours(path), **floors(workload, path, lines)}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            runs[name].append(_run(command))
    result: dict[str, Any] = {"workload": workload, "needed": NEEDED[workload]}
    naive = min(run["seconds"] for run in runs["naive"])
    for name, measured in runs.items():
        summary = _summarise(measured)
        summary["speedup"] = naive / summary["seconds"]
        result[name] = summary
    return result


def main(argv: list[str] | None = None) -> int:
    """Print each command's best time and its ratio to the naive script."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per command; the best counts")
    parser.add_argument("--only", default="folder,file", help="workloads to run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    wanted = args.only.split(",")
    results = []
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        if "folder" in wanted:
            folder, lines = root / "folder", root / "folder-lines"
            write_folder(folder, FOLDER_FILES, FOLDER_FILES)
            lines.mkdir()
            for number, log_file in enumerate(sorted(folder.rglob("*.json.gz"))):
                json_lines(log_file, lines / f"{number:06d}.json.gz", compress=True)
            results.append(measure("folder", folder, lines, args.repeat))
        if "file" in wanted:
            shallow, lines = root / "shallow.json", root / "shallow.jsonl"
            write_shallow_file(shallow, SHALLOW_RECORDS)
            json_lines(shallow, lines)
            results.append(measure("file", shallow, lines, args.repeat))
    if args.json:
        print(json.dumps({"results": results}, indent=2))
        return 0
    for result in results:
        print(f"{result['workload']} (needed {result['needed']:.0f}x):")
        for name in ("naive", "ours", "arrow", "duckdb"):
            if name in result:
                run = result[name]
                print(
                    f"  {name:<7}{run['seconds']:6.2f} s (runs {run['all_seconds']},"
                    f" cpu {run['cpu_seconds']:.2f} s)  {run['speedup']:4.1f}x"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

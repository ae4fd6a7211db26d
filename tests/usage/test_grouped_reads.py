"""Many small trail files read together: the same rows, in the same order, as file by file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.usage import stream
from emr_cmk_notebook.usage.batch import join_batches, usage_batch
from emr_cmk_notebook.usage.records import read_records
from emr_cmk_notebook.usage.stream import read_batches
from emr_cmk_notebook.usage.trail_files import list_log_files

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def kms_call(number: int, context: dict[str, str]) -> dict:
    return {
        "eventVersion": "1.11",
        "userIdentity": {"type": "AWSService", "invokedBy": "AWS Internal"},
        "eventTime": f"2026-02-10T09:{number // 60 % 60:02d}:{number % 60:02d}Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt",
        "awsRegion": "us-east-1",
        "requestParameters": {"keyId": KEY, "encryptionContext": context},
        "eventID": f"00000000-0000-0000-0000-{number:012d}",
        "readOnly": True,
        "recipientAccountId": ACCOUNT,
    }


def write(folder: Path, name: str, records: list, *, pretty: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"Records": records}, indent=2 if pretty else None)
    path = folder / name
    path.write_bytes(gzip.compress(text.encode()))
    return path


def one_by_one(folder: Path) -> pa.Table:
    """The reference: each file through the single-file reader, joined."""
    batches = [usage_batch(read_records(f.read(), f.name)) for f in list_log_files(folder)]
    return join_batches(batches).table


def together(folder: Path) -> tuple[pa.Table, int, int]:
    batches = list(read_batches(list_log_files(folder)))
    joined = join_batches(batches)
    return joined.table, joined.skipped_non_kms, joined.skipped_malformed


def same_rows(left: pa.Table, right: pa.Table) -> None:
    assert sorted(left.column_names) == sorted(right.column_names)
    for name in left.column_names:
        assert left.column(name).to_pylist() == right.column(name).to_pylist(), name


def test_files_with_different_context_keys_read_together_as_one_by_one(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    write(folder, "a.json.gz", [kms_call(n, {"applicationId": f"app{n}"}) for n in range(5)])
    write(folder, "b.json.gz", [kms_call(n, {"team": "risk"}) for n in range(5, 9)])
    # Pretty-printed: its line breaks are whitespace, and it still shares the read.
    write(folder, "c.json.gz", [kms_call(9, {})], pretty=True)
    table, non_kms, malformed = together(folder)
    same_rows(table, one_by_one(folder))
    assert table.column("event_id").to_pylist() == [
        f"00000000-0000-0000-0000-{n:012d}" for n in range(10)
    ]
    assert table.column("ctx.team").to_pylist() == [None] * 5 + ["risk"] * 4 + [None]
    assert (non_kms, malformed) == (0, 0)


def test_a_file_arrow_cannot_type_falls_back_and_counts_the_bad_record(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    write(folder, "a.json.gz", [kms_call(0, {"applicationId": "app0"})])
    odd = kms_call(1, {"applicationId": "app1"})
    odd["eventTime"] = {"not": "a time"}  # a record no schema types: dropped, counted
    write(folder, "b.json.gz", [odd, kms_call(2, {"applicationId": "app2"})])
    write(folder, "c.json.gz", [kms_call(3, {"applicationId": "app3"})])
    table, _, malformed = together(folder)
    assert table.column("event_id").to_pylist() == [
        f"00000000-0000-0000-0000-{n:012d}" for n in (0, 2, 3)
    ]
    assert malformed == 1


def test_groups_are_bounded_and_other_forms_are_read_alone_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "logs"
    for number in range(12):
        write(folder, f"f{number:02d}.json.gz", [kms_call(number, {"applicationId": "a"})])
    # Other forms of input in the middle: JSON lines, and a LookupEvents response.
    (folder / "f05b.jsonl").write_text(json.dumps(kms_call(100, {})) + "\n")
    lookup = {"Events": [{"CloudTrailEvent": json.dumps(kms_call(101, {}))}]}
    (folder / "f07b.json").write_text(json.dumps(lookup))
    monkeypatch.setattr(stream, "GROUP_FILES", 3)
    batches = list(read_batches(list_log_files(folder), workers=2))
    sizes = [batch.table.num_rows for batch in batches]
    assert max(sizes) <= 3 and sum(sizes) == 14
    order = join_batches(batches).table.column("event_id").to_pylist()
    numbers = [int(text[-12:]) for text in order]
    assert numbers == [0, 1, 2, 3, 4, 5, 100, 6, 7, 101, 8, 9, 10, 11]


def test_several_gzip_members_and_a_cut_file(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    first = json.dumps({"Records": [kms_call(0, {})]})
    # One document split over two gzip members, as concatenated gzip streams are.
    half = len(first) // 2
    path = folder / "members.json.gz"
    path.write_bytes(gzip.compress(first[:half].encode()) + gzip.compress(first[half:].encode()))
    table, _, _ = together(folder)
    assert table.num_rows == 1
    path.write_bytes(path.read_bytes()[:-9])
    with pytest.raises(UserError, match=r"members\.json\.gz: gzip data is truncated or corrupt"):
        together(folder)

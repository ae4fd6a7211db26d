"""``emr-cmk usage parse`` on trail folders: the layout, organisation trails, pruning, order."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from emr_cmk_notebook.cli import main
from emr_cmk_notebook.usage.stream import GROUP_FILES, read_batches
from emr_cmk_notebook.usage.trail_files import LogFile, Scope, list_log_files

WORKLOAD = "111122223333"
SECURITY = "444455556666"
ORG = "o-a1b2c3d4e5"
KEY = f"arn:aws:kms:us-east-1:{WORKLOAD}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def record(when: str, region: str, account: str, number: int) -> dict:
    """A KMS call by EMR Serverless, as a trail logs it."""
    return {
        "eventVersion": "1.11",
        "userIdentity": {"type": "AWSService", "invokedBy": "AWS Internal"},
        "eventTime": when,
        "eventSource": "kms.amazonaws.com",
        "eventName": "GenerateDataKey",
        "awsRegion": region,
        "requestParameters": {"keyId": KEY, "encryptionContext": {"applicationId": f"app{number}"}},
        "eventID": f"00000000-0000-0000-0000-{number:012d}",
        "readOnly": True,
        "recipientAccountId": account,
    }


def deliver(
    root: Path, account: str, region: str, day: str, times: list[str], org: str = ""
) -> Path:
    """Write a gzip log file where a trail would, one record per time; returns its path."""
    folder = root / "AWSLogs" / org / account / "CloudTrail" / region / day
    folder.mkdir(parents=True, exist_ok=True)
    first = len(list(root.rglob("*.json.gz"))) * 100
    records = [record(t, region, account, first + n) for n, t in enumerate(times)]
    stamp = times[-1].replace("-", "").replace(":", "")[:13] + "Z"
    path = folder / f"{account}_CloudTrail_{region}_{stamp}_{first:04d}.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    return path


def corrupt(folder: Path) -> Path:
    """A gzip file cut short: reading it is an error, so a run that passes never read it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cut_short.json.gz"
    path.write_bytes(gzip.compress(b'{"Records": []}')[:12])
    return path


def parse(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["usage", "parse", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    """A trail bucket: two regions of one account over three days, and an organisation trail."""
    deliver(tmp_path, WORKLOAD, "us-east-1", "2026/02/09", ["2026-02-09T23:50:00Z"])
    # Delivered after midnight: a record of the 9th in the folder of the 10th.
    deliver(tmp_path, WORKLOAD, "us-east-1", "2026/02/10", ["2026-02-09T23:58:00Z"])
    deliver(
        tmp_path,
        WORKLOAD,
        "us-east-1",
        "2026/02/10",
        ["2026-02-10T09:00:00Z", "2026-02-10T09:01:00Z"],
    )
    deliver(tmp_path, WORKLOAD, "eu-west-1", "2026/02/10", ["2026-02-10T10:00:00Z"])
    deliver(tmp_path, WORKLOAD, "us-east-1", "2026/02/11", ["2026-02-11T08:00:00Z"])
    deliver(tmp_path, SECURITY, "us-east-1", "2026/02/10", ["2026-02-10T11:00:00Z"], org=ORG)
    deliver(tmp_path, WORKLOAD, "us-east-1", "2026/02/10", ["2026-02-10T12:00:00Z"], org=ORG)
    return tmp_path


def test_a_trail_folder_is_read_whole_in_layout_order(
    bucket: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = parse(capsys, str(bucket), "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 8
    # Every row has the columns of the first file, its context key among them.
    assert all(list(row) == list(rows[0]) for row in rows) and "ctx.applicationId" in rows[0]
    # Plain AWSLogs/ACCOUNT first, then the organisation's; regions, then days, in path order.
    assert [(r["recipient_account_id"], r["aws_region"]) for r in rows] == [
        (WORKLOAD, "eu-west-1"),
        (WORKLOAD, "us-east-1"),
        (WORKLOAD, "us-east-1"),
        (WORKLOAD, "us-east-1"),
        (WORKLOAD, "us-east-1"),
        (WORKLOAD, "us-east-1"),
        (WORKLOAD, "us-east-1"),
        (SECURITY, "us-east-1"),
    ]


def test_folders_outside_the_window_account_and_region_are_never_read(
    bucket: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = bucket / "AWSLogs"
    for folder in (
        logs / WORKLOAD / "CloudTrail" / "us-east-1" / "2026/02/05",
        logs / WORKLOAD / "CloudTrail" / "us-east-1" / "2026/01",
        logs / WORKLOAD / "CloudTrail" / "ap-south-1" / "2026/02/10",
        logs / SECURITY / "CloudTrail" / "us-east-1" / "2026/02/10",
        logs / ORG / SECURITY / "CloudTrail" / "us-east-1" / "2026/02/10",
        logs / WORKLOAD / "CloudTrail-Digest" / "us-east-1" / "2026/02/10",
    ):
        corrupt(folder)
    code, out, err = parse(
        capsys,
        str(bucket),
        "--since",
        "2026-02-09T23:55:00Z",
        "--until",
        "2026-02-10T23:59:59Z",
        "--account",
        WORKLOAD,
        "--region",
        "us-east-1",
        "--summary",
    )
    assert (code, err) == (0, "")
    summary = json.loads(out)
    # The 23:58 record came from the next day's folder; the 11th's file holds nothing in range.
    assert summary["kms_records"] == 4
    assert (summary["first_event"], summary["last_event"]) == (
        "2026-02-09T23:58:00Z",
        "2026-02-10T12:00:00Z",
    )


def test_without_filters_a_bad_file_is_one_line_naming_it(
    bucket: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = corrupt(bucket / "AWSLogs" / WORKLOAD / "CloudTrail" / "us-east-1" / "2026/02/05")
    code, out, err = parse(capsys, str(bucket), "--summary")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and str(bad) in err and "truncated or corrupt" in err


def test_the_digest_folder_is_not_read_as_records(
    bucket: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt(bucket / "AWSLogs" / WORKLOAD / "CloudTrail-Digest" / "us-east-1" / "2026/02/10")
    code, out, _ = parse(capsys, str(bucket), "--summary")
    assert code == 0
    assert json.loads(out)["kms_records"] == 8


def test_an_organisation_account_and_a_folder_inside_the_layout(
    bucket: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = parse(capsys, str(bucket / "AWSLogs" / ORG), "--account", SECURITY, "--json")
    assert code == 0
    assert [r["application_id"] for r in json.loads(out)] == ["app500"]
    day = bucket / "AWSLogs" / WORKLOAD / "CloudTrail" / "us-east-1" / "2026" / "02"
    code, out, _ = parse(capsys, str(day), "--since", "2026-02-11T00:00:00Z", "--summary")
    assert json.loads(out)["kms_records"] == 1


def test_since_as_a_duration_counts_back_from_until(
    bucket: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = parse(
        capsys, str(bucket), "--until", "2026-02-10T12:00:00Z", "--since", "2h", "--summary"
    )
    assert code == 0
    assert json.loads(out)["kms_records"] == 3  # 10:00, 11:00 and 12:00


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account", "1234"], "--account '1234' is not a 12-digit account id"),
        (["--region", "nowhere"], "--region 'nowhere' is not a region name"),
        (["--since", "yesterday"], "--since 'yesterday' is not a time"),
        (
            ["--since", "2026-02-11T00:00:00Z", "--until", "2026-02-10T00:00:00Z"],
            "is after --until",
        ),
    ],
)
def test_bad_filters_are_one_line_and_exit_2(
    bucket: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = parse(capsys, str(bucket), *args)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and message in err


def test_a_folder_without_log_files_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    code, _, err = parse(capsys, str(tmp_path))
    assert code == 2 and "no CloudTrail files" in err and err.count("\n") == 1


def test_reading_stays_a_bounded_number_of_files_ahead(bucket: Path) -> None:
    files = list_log_files(bucket, Scope())

    def reads_before_first_batch(copies: int) -> int:
        reads: list[str] = []

        def counted(log_file: LogFile) -> LogFile:
            def read() -> bytes:
                reads.append(log_file.name)
                return log_file.read()

            return LogFile(log_file.name, read)

        batches = read_batches([counted(f) for f in files] * copies, workers=2)
        assert next(batches).table.num_rows >= 1
        batches.close()
        return len(reads)

    # The groups being parsed (one per worker at most), the next one, and two files ahead per
    # worker, however long the folder: memory does not grow with it.
    bound = (2 + 1) * GROUP_FILES + 2 * 2 + 1
    assert bound < len(files) * 40
    assert reads_before_first_batch(40) <= bound
    assert reads_before_first_batch(80) <= bound
    many = files * 20
    total = sum(b.table.num_rows for b in read_batches(many, workers=2))
    assert total == 8 * 20

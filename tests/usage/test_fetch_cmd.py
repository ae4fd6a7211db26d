"""``emr-cmk usage fetch``: output forms and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emr_cmk_notebook.cli import main

TRAIL = str(Path(__file__).parent / "fixtures" / "kms_trail.json")
KEY_EMR = "arn:aws:kms:us-east-1:444455556666:key/0987dcba-09fe-87dc-65ba-ab0987654321"
WINDOW = ["--start", "2026-02-10T09:00:00Z", "--end", "2026-02-10T10:00:00Z"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["usage", "fetch", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("since", ["7", "seven days", "0d", "-3d", "7y"])
def test_a_bad_since_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], since) -> None:
    code, out, err = run(capsys, "--key", KEY_EMR, "--since", since)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--since" in err and "Traceback" not in err


def test_a_bad_start_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--key", KEY_EMR, "--start", "yesterday-ish")
    assert code == 2 and err.count("\n") == 1 and "--start" in err


def test_an_unknown_source_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--key", KEY_EMR, "--source", "cloudwatch")
    assert code == 2 and err.count("\n") == 1 and "--source" in err


def test_files_without_a_path_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--key", KEY_EMR, "--source", "files")
    assert code == 2 and "PATH" in err


def test_json_holds_summary_findings_and_rows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--key", KEY_EMR, *WINDOW, "--source", "files", TRAIL, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["calls"] == 3 and len(data["rows"]) == 3
    assert data["summary"][0]["workload"] == "application 00fq3kd9a8bc1234"
    assert {f["finding"] for f in data["findings"]} == {"other_principal"}


def test_table_output_shows_workloads_and_finding_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "--key", KEY_EMR, *WINDOW, "--source", "files", TRAIL)
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith(f"3 KMS calls on {KEY_EMR} from files")
    assert any("application 00fq3kd9a8bc1234" in line for line in lines)
    assert lines[-1] == "1 finding(s); other_principal: 1"


def test_csv_prints_a_line_per_call(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--key", KEY_EMR, *WINDOW, "--source", "files", TRAIL, "--csv")
    assert code == 0
    assert len(out.strip().splitlines()) == 4
    assert "recipient_accounts" in out.splitlines()[0]


def test_an_empty_window_is_a_note_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "--key",
        KEY_EMR,
        "--start",
        "2026-02-10T10:00:00Z",
        "--end",
        "2026-02-10T09:00:00Z",
        "--source",
        "files",
        TRAIL,
    )
    assert code == 0
    assert "empty" in out.splitlines()[1]

"""``emr-cmk policy eval``: exit codes, JSON shape and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emr_cmk_notebook.cli import main

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/EmrRuntime"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/EmrRuntime/notebook"
SERVICE = "emr-serverless.amazonaws.com"
KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "EnableIamPolicies",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "EmrServerlessDisks",
            "Effect": "Allow",
            "Principal": {"Service": SERVICE},
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {
                "ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["applicationId"]}
            },
        },
    ],
}
IDENTITY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "UseKey", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}],
}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Key and identity policy files on disk."""
    paths = {"key": tmp_path / "key.json", "identity": tmp_path / "identity.json"}
    paths["key"].write_text(json.dumps(KEY_POLICY))
    paths["identity"].write_text(json.dumps(IDENTITY_POLICY))
    return {name: str(path) for name, path in paths.items()}


def eval_args(files: dict[str, str], *extra: str, principal: str = SESSION) -> list[str]:
    base = ["policy", "eval", "--key-policy", files["key"], "--principal", principal]
    return [*base, "--action", "kms:Decrypt", "--resource", KEY, *extra]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    return lines[0]


def test_allow_exits_zero_with_the_json_shape(files, capsys) -> None:
    code = main(eval_args(files, "--identity-policy", files["identity"], "--json"))
    body = json.loads(capsys.readouterr().out)
    assert code == 0
    assert body["decision"] == "allow"
    assert [s["sid"] for s in body["statements"]] == ["EnableIamPolicies", "UseKey"]
    assert {"source", "sid", "effect", "statement"} <= set(body["statements"][0])
    assert body["statements"][1]["source"] == "identity_policy[0]"
    assert body["reason"]


def test_implicit_deny_exits_one_and_summarises(files, capsys) -> None:
    code = main(eval_args(files))
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("IMPLICIT_DENY: no statement allows kms:Decrypt")
    assert 'near miss: key_policy statement "EnableIamPolicies"' in out


def test_explicit_deny_exits_one(files, tmp_path, capsys) -> None:
    deny = {"Statement": {"Effect": "Deny", "Action": "kms:*", "Resource": "*"}}
    (tmp_path / "deny.json").write_text(json.dumps(deny))
    args = eval_args(files, "--identity-policy", files["identity"])
    code = main([*args, "--identity-policy", str(tmp_path / "deny.json"), "--json"])
    assert code == 1
    assert json.loads(capsys.readouterr().out)["decision"] == "explicit_deny"


def test_repeated_context_is_multivalued_for_for_any_value(files, capsys) -> None:
    keys = ["--context", "kms:EncryptionContextKeys=team", "--context"]
    allowed = main(
        eval_args(
            files, *keys, "kms:EncryptionContextKeys=applicationId", "--json", principal=SERVICE
        )
    )
    assert allowed == 0
    assert json.loads(capsys.readouterr().out)["statements"][0]["sid"] == "EmrServerlessDisks"
    denied = main(
        eval_args(files, *keys, "kms:EncryptionContextKeys=owner", "--json", principal=SERVICE)
    )
    body = json.loads(capsys.readouterr().out)
    assert denied == 1
    assert body["statements"][0]["failed_condition"] == (
        "ForAnyValue:StringEquals kms:EncryptionContextKeys"
    )


def test_missing_file_exits_two(files, tmp_path, capsys) -> None:
    missing = str(tmp_path / "nope.json")
    assert main(eval_args(files, "--identity-policy", missing)) == 2
    assert f"cannot read identity policy {missing}" in one_line_error(capsys)


def test_invalid_json_exits_two_with_line_and_column(files, tmp_path, capsys) -> None:
    Path(files["key"]).write_text('{"Statement": [\n  {"Effect": "Allow",}]}')
    assert main(eval_args(files)) == 2
    assert "invalid JSON at line 2 column" in one_line_error(capsys)


def test_invalid_policy_exits_two_naming_the_place(files, capsys) -> None:
    Path(files["key"]).write_text(json.dumps({"Statement": {"Effect": "Allowed"}}))
    assert main(eval_args(files)) == 2
    assert f"key policy {files['key']}: Statement.Effect" in one_line_error(capsys)


def test_context_without_equals_exits_two(files, capsys) -> None:
    assert main(eval_args(files, "--context", "aws:SourceAccount")) == 2
    assert "--context 'aws:SourceAccount' must look like KEY=VALUE" in one_line_error(capsys)


def test_bad_principal_exits_two(files, capsys) -> None:
    assert main(eval_args(files, principal="alice")) == 2
    assert "not an ARN or a service principal" in one_line_error(capsys)


def test_console_script_prints_json(files) -> None:
    script = shutil.which("emr-cmk", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "emr_cmk_notebook"]
    args = eval_args(files, "--identity-policy", files["identity"], "--json")
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["decision"] == "allow"


def _padded(policy: dict, size: int) -> str:
    """``policy`` as JSON padded with spaces to ``size`` bytes (whitespace is valid JSON)."""
    text = json.dumps(policy)
    return text + " " * (size - len(text))


def refused_in_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    return captured.err


def test_a_key_policy_past_the_kms_quota_is_refused(tmp_path, files, capsys) -> None:
    assert refused_in_one_line(capsys, eval_args({**files, "key": "/dev/zero"})) == (
        "emr-cmk: error: key policy /dev/zero is larger than 32,768 bytes,"
        " more than a KMS key policy can hold\n"
    )
    largest, too_large = tmp_path / "largest.json", tmp_path / "too-large.json"
    largest.write_text(_padded(KEY_POLICY, 32_768))
    too_large.write_text(_padded(KEY_POLICY, 32_769))
    identity = ("--identity-policy", files["identity"], "--json")
    assert main(eval_args({**files, "key": str(largest)}, *identity)) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "allow"
    err = refused_in_one_line(capsys, eval_args({**files, "key": str(too_large)}))
    assert f"key policy {too_large} is larger than 32,768 bytes" in err


def test_an_identity_policy_past_the_iam_quotas_is_refused(tmp_path, files, capsys) -> None:
    argv = eval_args(files, "--identity-policy", "/dev/zero")
    assert "identity policy /dev/zero is larger than 131,072 bytes" in refused_in_one_line(
        capsys, argv
    )
    # IAM does not count whitespace: a pretty-printed policy past 10,240 bytes is fine...
    roomy = tmp_path / "roomy.json"
    roomy.write_text(_padded(IDENTITY_POLICY, 100_000))
    assert main(eval_args(files, "--identity-policy", str(roomy), "--json")) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "allow"
    # ...but 10,241 characters besides whitespace are more than IAM takes.
    statement = {**IDENTITY_POLICY["Statement"][0], "Sid": ""}
    base = len(json.dumps({**IDENTITY_POLICY, "Statement": [statement]}, separators=(",", ":")))
    statement["Sid"] = "S" * (10_241 - base)
    crowded = tmp_path / "crowded.json"
    crowded.write_text(json.dumps({**IDENTITY_POLICY, "Statement": [statement]}))
    err = refused_in_one_line(capsys, eval_args(files, "--identity-policy", str(crowded)))
    assert "has 10,241 characters besides whitespace; IAM allows at most 10,240" in err

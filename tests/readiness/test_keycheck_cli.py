"""``emr-cmk key-check``: exit codes, one-line errors, JSON."""

from __future__ import annotations

import json

import pytest

from emr_cmk_notebook.cli import main
from tests.conftest import demo_app_id
from tests.readiness.conftest import SESSION_ROLE


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--key", "not-a-key"], "key"),
        (["--application-id", "Not An Id"], "--application-id"),
        (["--role", "arn:aws:iam::111122223333:user/analyst"], "--role"),
        (["--role", "arn:aws:iam:us-east-1:111122223333:role/R"], "names a region"),
        (["--role", "arn:aws:iam::111122223333:role/Rôle"], "1 to 64 ASCII letters"),
        (["--context", "novalue"], "KEY=VALUE"),
        (["--transport", "ftp"], "--transport"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, named):
    base = {"--key": "alias/emr-analytics", "--application-id": "00abc", "--role": SESSION_ROLE}
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = ["key-check"] + [x for k, v in {**base, **given}.items() for x in (k, v)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "Traceback" not in err


@pytest.mark.integration
def test_json_and_exit_codes_follow_readiness(capsys, demo, target):
    common = ["--application-id", demo_app_id(demo), "--role", SESSION_ROLE, "--json"]
    assert main(["key-check", "--key", "alias/emr-analytics", *common]) == 0
    ready = json.loads(capsys.readouterr().out)
    assert ready["ready"] and {c["status"] for c in ready["checks"]} == {"pass"}
    assert main(["key-check", "--key", "alias/emr-disabled", *common]) == 1
    disabled = json.loads(capsys.readouterr().out)
    state = next(c for c in disabled["checks"] if c["id"] == "key_state")
    assert state["status"] == "fail" and "Disabled" in state["reason"]


@pytest.mark.integration
def test_an_aws_managed_key_is_refused_without_a_key_policy_command(capsys, demo, target):
    common = ["--application-id", demo_app_id(demo), "--role", SESSION_ROLE]
    assert main(["key-check", "--key", "alias/aws/ebs", *common, "--transport", "job"]) == 1
    text = capsys.readouterr().out
    assert "AWS managed key" in text and "customer managed key" in text
    assert "put-key-policy" not in text
    assert main(["key-check", "--key", "alias/aws/ebs", *common, "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    manager = next(c for c in shown["checks"] if c["id"] == "key_manager")
    assert manager["status"] == "fail" and shown["transport"] == "livy"
    assert all("detail" in c for c in shown["checks"])

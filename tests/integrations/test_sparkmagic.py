"""sparkmagic's %%spark on the session %emr_session started, behind the SigV4 authenticator."""

from __future__ import annotations

import json

import pytest
import requests
from IPython.core.interactiveshell import InteractiveShell

from emr_cmk_notebook.core.encryption import LIVY_CONTEXT, LIVY_KEY_ARN
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.sessions.conf import EXECUTION_ROLE
from tests.conftest import demo_app_id, key_arn
from tests.magics.conftest import Shell
from tests.sessions.conftest import pointed_at, session_role

pytest.importorskip("sparkmagic")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sparkmagic_shell(backend):
    """A shell with sparkmagic loaded and an encrypted session started with %emr_session."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "emr_cmk_notebook")
    shell = Shell(ip)
    shell.run("%load_ext sparkmagic.magics")
    status = backend.status()
    app, role = demo_app_id(status), session_role(status)
    with pointed_at(backend):
        info = shell.line(
            "emr_session",
            f"start --application-id {app} --role {role} --key alias/emr-analytics "
            "--context project=churn",
        )
        yield shell, info
        shell.line("emr_session", "stop --all")


def test_spark_cell_runs_on_the_session_we_started(sparkmagic_shell, capsys):
    shell, info = sparkmagic_shell
    capsys.readouterr()
    shell.run("%%spark\nspark.range(1000).count()")
    assert "1000" in capsys.readouterr().out
    registry = shell.ip.magics_manager.registry["RemoteSparkMagics"]
    session = registry.spark_controller.session_manager.sessions[f"emr-{info.id}"]
    assert session.id == info.id


def test_a_configure_style_body_gets_role_and_key_back_and_is_signed(sparkmagic_shell, demo):
    from emr_cmk_notebook.integrations.sparkmagic_auth import SigV4Authenticator

    shell, info = sparkmagic_shell
    registry = shell.ip.magics_manager.registry["RemoteSparkMagics"]
    endpoint = registry.spark_controller.session_manager.sessions[f"emr-{info.id}"].endpoint
    assert isinstance(endpoint.auth, SigV4Authenticator)
    # What %%configure -f would send: a new conf without the role or the key.
    request = requests.Request(
        "POST",
        f"{endpoint.url}/sessions",
        data=json.dumps({"kind": "pyspark", "conf": {"spark.executor.memory": "2g"}}),
        headers={"Content-Type": "application/json"},
    ).prepare()
    signed = endpoint.auth(request)
    conf = json.loads(signed.body)["conf"]
    assert conf[LIVY_KEY_ARN] == key_arn(demo, "alias/emr-analytics")
    assert conf[LIVY_CONTEXT] == "project:churn"
    assert conf[EXECUTION_ROLE] == info.role_arn
    assert conf["spark.executor.memory"] == "2g"
    assert "/emr-serverless/aws4_request" in signed.headers["Authorization"]
    clash = requests.Request(
        "POST",
        f"{endpoint.url}/sessions",
        data=json.dumps({"kind": "pyspark", "conf": {LIVY_KEY_ARN: "arn:aws:kms:x"}}),
        headers={"Content-Type": "application/json"},
    ).prepare()
    with pytest.raises(UserError, match="cannot be overridden"):
        endpoint.auth(clash)


def test_requests_signed_by_the_authenticator_pass_and_unsigned_ones_do_not(sparkmagic_shell):
    shell, info = sparkmagic_shell
    registry = shell.ip.magics_manager.registry["RemoteSparkMagics"]
    session = registry.spark_controller.session_manager.sessions[f"emr-{info.id}"]
    assert info.id in [s["id"] for s in session.http_client.get_sessions()["sessions"]]
    assert requests.get(f"{session.endpoint.url}/sessions", timeout=10).status_code == 403


def test_sql_cells_run_on_the_same_session(sparkmagic_shell):
    shell, _ = sparkmagic_shell
    shell.run("%%spark -c sql -o sparkmagic_counted -q\nSELECT COUNT(*) AS n FROM range(5)")
    assert shell.user_ns["sparkmagic_counted"]["n"].tolist() == [5]

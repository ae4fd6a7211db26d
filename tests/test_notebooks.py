"""Every tutorial runs top to bottom in a real kernel against its own local backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# What a reader must see in each tutorial's outputs.
EXPECTED = {
    "01_quickstart.ipynb": ["1000", "(session override)", "project=churn", "is Disabled"],
    "02_readiness.ipynb": ["not ready", "aws:emr-serverless:application-id", "100"],
    "03_key_usage_audit.ipynb": ["churn", "fraud", "AccessDeniedException"],
    "04_spark_connect.ipynb": [
        "use the application's key",
        "%emr_app update --application-id",
        "Spark Connect",
        "499500",
        "verified: EMR Serverless made a data key",
        "TERMINATED",
    ],
    "05_cross_account_key.ipynb": [
        "AllowAnalyticsAccountToUseTheKey",
        "could not be verified",
        "verified: EMR Serverless made a data key",
        "111122223333,444455556666",
    ],
    "06_per_workload_keys.ipynb": [
        "(job override)",
        "SUCCESS",
        "verified: EMR Serverless made a data key",
        "development",
        "production",
    ],
    "07_compliance_evidence.ipynb": [
        "report written to",
        "2 sessions verified",
        "readiness at start",
    ],
}


def outputs_text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(str(output.get("text", "")))
            parts.extend(str(v) for v in output.get("data", {}).values())
    return "\n".join(parts)


@pytest.mark.integration
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_tutorial_runs_and_keeps_no_secret(path, tmp_path, backend):
    output = tmp_path / path.name
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["EMR_CMK_HOME"] = str(tmp_path / "home")
    runtime = tmp_path / "runtime"
    env["JUPYTER_RUNTIME_DIR"] = str(runtime)
    done = subprocess.run(
        [str(BIN / "emr-cmk"), "notebook", "run", str(path), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # The kernel is reached over Unix sockets: no TCP port, and no warning about one.
    assert "without encryption" not in done.stderr, done.stderr[-2000:]
    assert not list(runtime.glob("emr-cmk-kernel-*")), "the kernel's sockets are left behind"
    text = output.read_text()
    shown = outputs_text(nbformat.reads(text, as_version=4))
    for expected in EXPECTED.get(path.name, []):
        assert expected in shown, f"{path.name}: {expected!r} not in the outputs"
    from emr_cmk_notebook.local import ANALYTICS_ACCOUNT, SECURITY_ACCOUNT

    secrets = [
        backend.env(a)["AWS_SECRET_ACCESS_KEY"] for a in (ANALYTICS_ACCOUNT, SECURITY_ACCOUNT)
    ]
    assert not any(secret in text for secret in secrets)
    assert "x-amz-security-token" not in text.lower()
    assert "Signature=" not in text


def test_every_tutorial_has_expectations():
    assert {p.name for p in NOTEBOOKS} <= set(EXPECTED)

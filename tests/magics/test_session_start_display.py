"""What ``%emr_session start`` shows while the session starts: through nbclient, one line updated
in place that ends on the state the session reached; in a terminal IPython, a line per step."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import demo_app_id
from tests.sessions.conftest import pointed_at, session_role

pytestmark = pytest.mark.integration


def test_through_nbclient_a_start_leaves_one_line_on_the_state_reached(backend):
    import nbformat
    from nbclient import NotebookClient

    demo = backend.status()
    app, role = demo_app_id(demo), session_role(demo)
    start = f"%emr_session start --application-id {app} --role {role}"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(code)
        for code in (
            "%load_ext emr_cmk_notebook",
            f"{start} --key alias/emr-analytics",
            f"{start} --transport connect",
            "%emr_session stop --all",
        )
    ]
    with pointed_at(backend):
        NotebookClient(notebook, kernel_name="python3", timeout=300).execute()

    for cell, state in ((notebook.cells[1], "idle"), (notebook.cells[2], "STARTED")):
        lines = [
            o["data"]["text/plain"]
            for o in cell.outputs
            if o["output_type"] == "display_data"
            and o["data"].get("text/plain", "").startswith("starting a session on")
        ]
        assert len(lines) == 1, cell.outputs
        assert re.fullmatch(
            rf"starting a session on {app}: session \w+ {state} \(\d+\.\d s\)", lines[0]
        ), lines
        # Nothing on stderr, which frontends show as an error: no library's deprecation, and
        # the SparkSession bound for a Spark Connect session is said on stdout.
        stderr = "".join(o["text"] for o in cell.outputs if o.get("name") == "stderr")
        assert stderr == "", stderr
        stdout = "".join(o["text"] for o in cell.outputs if o.get("name") == "stdout")
        if state == "STARTED":
            assert f"spark: a SparkSession on session {lines[0].split()[6]}\n" in stdout


def test_in_a_terminal_a_start_prints_a_line_per_step(backend):
    demo = backend.status()
    app, role = demo_app_id(demo), session_role(demo)
    code = (
        "%load_ext emr_cmk_notebook\n"
        f"%emr_session start --application-id {app} --role {role}\n"
        "%emr_session stop --all\n"
    )
    with pointed_at(backend):
        done = subprocess.run(
            [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", "-c", code],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = re.findall(rf"^starting a session on {app}: (.*) \(\d+\.\d s\)$", done.stdout, re.M)
    assert steps and len(steps) == len(set(steps)), done.stdout
    assert re.fullmatch(r"session \d+ idle", steps[-1]), steps

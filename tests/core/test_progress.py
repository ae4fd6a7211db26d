"""Progress lines, written once for the magics, the launcher and the CLI."""

from __future__ import annotations

import re
import time

from emr_cmk_notebook.core.progress import ProgressLog, ProgressText


def test_a_progress_line_says_what_happens_and_for_how_long():
    steps = ProgressText("starting a session on 00app")
    time.sleep(0.11)
    line = steps.line("session 3 starting")
    assert re.fullmatch(r"starting a session on 00app: session 3 starting \((\d+\.\d) s\)", line)
    assert float(re.search(r"\((\d+\.\d) s\)", line).group(1)) >= 0.1


def test_a_progress_log_writes_a_line_when_the_step_changes_only():
    lines: list[str] = []
    log = ProgressLog("job run 00run", lines.append)
    for state in ("PENDING", "PENDING", "RUNNING", "RUNNING", "RUNNING", "SUCCESS"):
        log(state)
    assert [re.sub(r" \(\d+\.\d s\)$", "", line) for line in lines] == [
        "job run 00run: PENDING",
        "job run 00run: RUNNING",
        "job run 00run: SUCCESS",
    ]

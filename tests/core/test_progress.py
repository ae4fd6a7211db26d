"""Progress lines, written once for the magics, the launcher and the CLI."""

from __future__ import annotations

import re
import time

from emr_cmk_notebook.core.progress import ProgressText


def test_a_progress_line_says_what_happens_and_for_how_long():
    steps = ProgressText("starting a session on 00app")
    time.sleep(0.11)
    line = steps.line("session 3 starting")
    assert re.fullmatch(r"starting a session on 00app: session 3 starting \((\d+\.\d) s\)", line)
    assert float(re.search(r"\((\d+\.\d) s\)", line).group(1)) >= 0.1

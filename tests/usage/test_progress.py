"""Progress on long reads: a tqdm bar on a terminal, none with --quiet, --json or a pipe."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.usage.test_trail_folders import WORKLOAD, deliver


def run_on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run ``emr-cmk`` with stderr on a pseudo-terminal; returns code, stdout and the terminal."""
    main_end, terminal_end = pty.openpty()
    # 40 rows of 120 columns: a new pseudo-terminal has no size, and tqdm draws nothing in 0.
    fcntl.ioctl(terminal_end, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "emr_cmk_notebook", *args],
        stdout=subprocess.PIPE,
        stderr=terminal_end,
        env=env,
        timeout=120,
    )
    os.close(terminal_end)
    shown = b""
    while True:
        try:
            chunk = os.read(main_end, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_end)
    return done.returncode, done.stdout.decode(), shown.decode(errors="replace")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for day in range(1, 4):
        deliver(tmp_path, WORKLOAD, "us-east-1", f"2026/02/0{day}", [f"2026-02-0{day}T09:00:00Z"])
    return tmp_path


def test_a_terminal_sees_a_bar_over_the_files(folder: Path) -> None:
    code, out, shown = run_on_a_terminal("usage", "parse", str(folder), "--summary")
    assert code == 0 and '"kms_records": 3' in out
    # Three files go by too fast for every step to be drawn, so the count is what shows.
    assert "CloudTrail files:" in shown and "/3 [" in shown


@pytest.mark.parametrize("flags", [["--quiet"], ["--json"], ["--summary", "-q"]])
def test_quiet_and_json_show_no_bar(folder: Path, flags: list[str]) -> None:
    code, _, shown = run_on_a_terminal("usage", "parse", str(folder), *flags)
    assert code == 0 and shown == ""


def test_a_pipe_gets_no_bar(folder: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "emr_cmk_notebook", "usage", "parse", str(folder)],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == b""


@pytest.mark.integration
def test_a_harvest_draws_a_bar_per_account_and_region(backend, monkeypatch) -> None:
    import io
    from functools import partial

    from tqdm import tqdm

    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.usage.key_usage import KeyUsage

    for name, value in backend.env().items():
        monkeypatch.setenv(name, value)
    drawn = io.StringIO()
    seen = []
    KeyUsage.fetch(
        "alias/emr-analytics",
        since="1h",
        target=AwsTarget(),
        cache=False,
        settle=0,
        progress=seen.append,
        progress_bar=partial(tqdm, file=drawn, mininterval=0),
    )
    assert seen, "the HarvestProgress callback still runs next to the bar"
    assert "111122223333/us-east-1" in drawn.getvalue() and "calls" in drawn.getvalue()

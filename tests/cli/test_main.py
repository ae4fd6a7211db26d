"""What every ``emr-cmk`` subcommand shares: how it ends when its reader goes away."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from emr_cmk_notebook.cli import BROKEN_PIPE_EXIT

BIN = Path(sys.executable).parent
TRAIL = str(Path(__file__).parents[1] / "usage" / "fixtures" / "kms_trail.json")


def closed_reader(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``emr-cmk`` with stdout a pipe nobody reads any more, as in ``emr-cmk ... | head -0``."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [str(BIN / "emr-cmk"), *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)


def assert_quiet_end(done: subprocess.CompletedProcess) -> None:
    # 141 is what a shell shows for a command its reader left; argparse's --help ends with 0.
    assert done.returncode in (0, BROKEN_PIPE_EXIT), done.returncode
    assert done.stderr == ""


@pytest.mark.parametrize("output", ["--csv", "--json", "--summary"])
def test_usage_parse_into_a_closed_pipe_ends_quietly(output: str) -> None:
    done = closed_reader(["usage", "parse", TRAIL, output], dict(os.environ))
    assert_quiet_end(done)
    assert done.returncode == BROKEN_PIPE_EXIT == 128 + 13  # 13: SIGPIPE


@pytest.mark.integration
def test_local_status_into_a_closed_pipe_ends_quietly(backend) -> None:
    env = {**os.environ, **backend.env()}
    assert_quiet_end(closed_reader(["local", "status"], env))
    assert_quiet_end(closed_reader(["local", "status", "--json"], env))


def test_help_into_a_closed_pipe_ends_quietly() -> None:
    assert_quiet_end(closed_reader(["--help"], dict(os.environ)))


def test_each_command_line_loads_only_its_own_subcommand() -> None:
    from emr_cmk_notebook.cli import SUBCOMMAND_MODULES, build_parser

    def commands(parser) -> set[str]:
        return set(next(a for a in parser._actions if a.dest == "command").choices)

    assert commands(build_parser()) == set(SUBCOMMAND_MODULES)
    for command in SUBCOMMAND_MODULES:
        assert commands(build_parser(command)) == {command}


def test_usage_parse_does_not_pay_for_the_session_code() -> None:
    # The session code and its imports are a third of the start-up of `usage parse`.
    script = (
        "import sys; from emr_cmk_notebook.cli import main; "
        f"code = main(['--debug', 'usage', 'parse', {TRAIL!r}, '--quiet']); "
        "print(code, 'emr_cmk_notebook.sessions' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.splitlines()[-1] == "0 False", done.stderr

"""What a newcomer relies on: the README's commands are the ones CI runs, and they work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(python3 -m venv .+)\n```", (ROOT / "README.md").read_text())


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    quickstart, tests = readme_commands()[:2]
    assert "notebooks/01_quickstart.ipynb" in quickstart
    assert "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_code_is_ruff_clean():
    done = subprocess.run(
        [str(BIN / "ruff"), "check", "--quiet", str(ROOT)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_committed_notebooks_hold_no_outputs():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), path

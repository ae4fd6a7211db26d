"""What a newcomer relies on: the README's commands are the ones CI runs, and they work."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


SETUP = "scripts/install-system-packages"


def readme_commands() -> list[str]:
    return re.findall(
        r"```bash\n((?:\S+ && )?python3 -m venv .+)\n```", (ROOT / "README.md").read_text()
    )


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    quickstart, tests = readme_commands()[:2]
    assert "notebooks/01_quickstart.ipynb" in quickstart
    assert "pytest" in tests
    # The test command installs its system packages first; the quickstart needs none.
    assert tests.startswith(f"{SETUP} && python3 -m venv")
    assert quickstart.startswith("python3 -m venv")
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_system_packages_say_what_to_do_where_apt_get_is_missing(tmp_path: Path) -> None:
    # A PATH with the shell's basic tools but no apt-get or dpkg: what a non-Debian system has.
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "env", "basename", "id"):
        (tools / tool).symlink_to(shutil.which(tool))
    done = subprocess.run(
        [str(tools / "bash"), str(ROOT / SETUP)],
        env={"PATH": str(tools)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "no apt-get here" in done.stderr
    assert "libkrb5-dev chromium" in done.stderr


def test_system_packages_installed_means_nothing_to_do() -> None:
    if not shutil.which("dpkg-query"):
        pytest.skip("not a Debian system: dpkg-query is missing")
    wanted = ("libkrb5-dev", "chromium")
    for package in wanted:
        shown = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
        )
        if shown.stdout != "install ok installed":
            pytest.skip(f"{package} is not installed here, so the script would install it")
    done = subprocess.run([str(ROOT / SETUP)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def _browser_tests(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "tests/browser"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_browser_test_is_skipped_without_chromium_except_in_ci(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["BROWSER_CHROMIUM"] = str(tmp_path / "no-chromium")

    skipped = _browser_tests(env)
    assert skipped.returncode == 0, skipped.stdout[-3000:]
    reasons = [line for line in skipped.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(reasons) == 1, skipped.stdout[-3000:]
    assert f"{tmp_path / 'no-chromium'} is missing" in reasons[0]
    assert SETUP in reasons[0]

    in_ci = _browser_tests({**env, "CI": "true"})
    assert in_ci.returncode == 1, in_ci.stdout[-3000:]
    assert "CI=true, so the browser test may not be skipped" in in_ci.stdout
    assert "Traceback" not in in_ci.stdout


def test_code_is_ruff_clean():
    done = subprocess.run(
        [str(BIN / "ruff"), "check", "--quiet", str(ROOT)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_committed_notebooks_hold_no_outputs():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), path


def test_every_import_the_readme_and_tutorials_show_still_works():
    """Modules get split and moved; what the README and the tutorials import keeps working."""
    texts = [(ROOT / "README.md").read_text()]
    texts += [
        cell.source
        for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "code"
    ]
    shown = {
        (module, name.strip())
        for text in texts
        for module, names in re.findall(
            r"^\s*from (emr_cmk_notebook[\w.]*) import ([\w, ]+)$", text, re.M
        )
        for name in names.split(",")
    }
    assert ("emr_cmk_notebook.core.encryption", "DiskEncryption") in shown
    missing = [
        f"{module}.{name}"
        for module, name in sorted(shown)
        if not hasattr(importlib.import_module(module), name)
        and importlib.util.find_spec(f"{module}.{name}") is None
    ]
    assert not missing, f"the README or a tutorial imports what is gone: {missing}"

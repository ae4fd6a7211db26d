"""Binder's steps, replayed in a fresh virtual environment, run the quickstart to the end."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "notebooks" / "01_quickstart.ipynb"
RUNTIME = ROOT / "binder" / "runtime.txt"


def binder_python() -> str:
    """The Python version repo2docker builds with: ``binder/runtime.txt`` (``python-X.Y``).

    With a ``binder/`` folder repo2docker reads no ``requires-python`` from pyproject.toml, and
    without runtime.txt it takes its own default (3.10), which this project does not support.
    """
    runtime = RUNTIME.read_text().strip()
    match = re.fullmatch(r"python-(\d+)\.(\d+)(?:\.\d+)?", runtime)
    assert match, f"{RUNTIME}: {runtime!r} is not python-X.Y"
    return f"{match[1]}.{match[2]}"


def test_binder_pins_a_python_the_project_supports() -> None:
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", required)
    assert minimum, f"requires-python {required!r} is not >=X.Y"
    pinned = tuple(int(part) for part in binder_python().split("."))
    assert pinned >= (int(minimum[1]), int(minimum[2])), (binder_python(), required)


def _run(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """One Binder step from the repository root, as repo2docker runs them."""
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.integration
def test_binder_steps_run_the_quickstart(tmp_path: Path) -> None:
    version = binder_python()
    python = shutil.which(f"python{version}")
    if python is None:
        pytest.skip(f"python{version} (binder/runtime.txt) is not on this machine's PATH")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    ran = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys; print(*sys.version_info[:2], sep='.')"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.strip() == version
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["EMR_CMK_HOME"] = str(tmp_path / "home")

    # pip may reuse its cache: a second run of this test then installs in seconds.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    installed = _run([*pip, "-r", "binder/requirements.txt"], env, timeout=1800)
    assert installed.returncode == 0, installed.stderr[-3000:]

    built = _run(["bash", "binder/postBuild"], env, timeout=300)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]

    output = tmp_path / "quickstart.ipynb"
    try:
        ran = _run(
            [
                "binder/start",
                "emr-cmk",
                "notebook",
                "run",
                str(QUICKSTART),
                "--output",
                str(output),
            ],
            env,
            timeout=900,
        )
        assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    finally:
        stopped = _run([str(venv / "bin" / "emr-cmk"), "local", "stop"], env, timeout=60)
    # `start` left its backend running for the notebook's kernel; stopping it proves both.
    assert stopped.stdout.strip() == "stopped", stopped.stdout + stopped.stderr

    notebook = nbformat.read(output, as_version=4)
    shown = "\n".join(
        str(part)
        for cell in notebook.cells
        for out in cell.get("outputs", [])
        for part in (out.get("text", ""), *out.get("data", {}).values())
    )
    for expected in ("1000", "project=churn", "(session override)", "is Disabled"):
        assert expected in shown, f"{expected!r} not in the quickstart's outputs"

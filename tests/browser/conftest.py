"""A headless Jupyter frontend (JupyterLab or Notebook 7) on loopback and Debian's chromium driven
by Playwright, all private."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Debian's chromium (scripts/install-system-packages installs it); $BROWSER_CHROMIUM: another.
CHROMIUM = Path(os.environ.get("BROWSER_CHROMIUM", "/usr/bin/chromium"))
# Without the networking flags chromium keeps calling out, which a closed network refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The frontend's settings for this run: no news or update checks, and every cell kept in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


@dataclass(frozen=True)
class Frontend:
    """A Jupyter frontend: the ``jupyter`` subcommand that serves it, its application class (for
    its settings), and where it opens a notebook."""

    name: str
    command: str
    app: str
    notebook_route: str

    def notebook_path(self, name: str) -> str:
        """The path of the page that shows the notebook ``name``."""
        return f"{self.notebook_route}/{name}"


JUPYTERLAB = Frontend("JupyterLab", "lab", "LabApp", "lab/tree")
NOTEBOOK7 = Frontend("Notebook 7", "notebook", "JupyterNotebookApp", "notebooks")


@dataclass
class JupyterServer:
    """A running Jupyter server and frontend: where it answers and the private EMR_CMK_HOME its
    kernels use."""

    url: str
    token: str
    root_dir: Path
    home: Path
    frontend: Frontend

    def page_url(self, path: str) -> str:
        """The address of a page, with the token that lets the browser in."""
        return f"{self.url}/{path}?token={self.token}&reset"

    def notebook_url(self, name: str) -> str:
        """The address of the page that shows the notebook ``name`` in the root dir."""
        return self.page_url(self.frontend.notebook_path(name))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _processes_with(marker: str) -> list[int]:
    """Pids whose environment holds ``marker``: what this test started and left running."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _write_settings(settings_dir: Path) -> None:
    for relative, values in LAB_SETTINGS.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Without chromium, skip before the server starts; in CI (CI=true) fail instead."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: install Debian's chromium (scripts/install-system-packages)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so the browser test may not be skipped", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[JupyterServer]:
    """JupyterLab on 127.0.0.1 with a token, holding a copy of the quickstart; stopped after."""
    with served(JUPYTERLAB, tmp_path) as running:
        yield running


@pytest.fixture(params=[JUPYTERLAB, NOTEBOOK7], ids=lambda frontend: frontend.command)
def jupyter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JupyterServer]:
    """Each frontend in turn (JupyterLab, Notebook 7), served as ``lab`` is."""
    with served(request.param, tmp_path) as running:
        yield running


@contextlib.contextmanager
def served(frontend: Frontend, tmp_path: Path) -> Iterator[JupyterServer]:
    """``frontend`` on 127.0.0.1 with a token, holding a copy of the quickstart; stopped after,
    with the local backend its kernels started, and nothing of it left running."""
    root_dir = tmp_path / "root"
    root_dir.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_quickstart.ipynb", root_dir)
    jupyter = tmp_path / "jupyter"
    _write_settings(jupyter / "settings")
    home = tmp_path / "emr-cmk-home"
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "JUPYTER"))}
    env.update(
        EMR_CMK_HOME=str(home),
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
    )
    log_path = tmp_path / f"{frontend.command}.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [
            str(BIN / "python"),
            "-m",
            "jupyter",
            frontend.command,
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root_dir}",
            "--ServerApp.open_browser=False",
            f"--{frontend.app}.user_settings_dir={jupyter / 'settings'}",
            f"--{frontend.app}.workspaces_dir={jupyter / 'workspaces'}",
            "--ServerApp.allow_root=True",
            "--LabApp.news_url=None",
            "--LabApp.extension_manager=readonly",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _answers(f"{url}/api/status?token={token}"):
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{frontend.name} did not answer on {url}:\n{log_path.read_text()}"
                )
            time.sleep(0.5)
        yield JupyterServer(url, token, root_dir, home, frontend)
    finally:
        _stop_lab(server, url, token)
        log.close()
        subprocess.run(
            [str(BIN / "emr-cmk"), "local", "stop"], env=env, capture_output=True, timeout=60
        )
    left = _processes_with(f"EMR_CMK_HOME={home}")
    assert not left, f"still running after the test: pids {left}"


def _stop_lab(server: subprocess.Popen, url: str, token: str) -> None:
    """Shut the server down through its API (it stops its kernels first), then by signal."""
    request = urllib.request.Request(
        f"{url}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"}
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except (urllib.error.URLError, OSError):
        server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


@pytest.fixture
def browser_context(tmp_path: Path) -> Iterator[Any]:
    """A fresh headless chromium profile; a missing Playwright fails the test."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[test]'", pytrace=False)
    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1400, "height": 1000},
            )
        except Error as exc:
            pytest.fail(f"chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
        try:
            yield context
        finally:
            context.close()


def answer_dialog(page: Any) -> None:
    """A dialog the frontend opened on its own (one once held a first click off for a minute)
    gets its default answer; what it said goes to the test's output."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        print(f"\nthe frontend asked: {' '.join(dialog.first.inner_text().split())}")
        dialog.first.locator(".jp-Dialog-button.jp-mod-accept").last.click()
        dialog.first.wait_for(state="detached")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $BROWSER_ARTIFACTS when CI sets it, else pytest's temp dir."""
    chosen = os.environ.get("BROWSER_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path

"""A real IPython shell with the extension loaded; cell errors are raised, never swallowed."""

from __future__ import annotations

import os

import pytest
from IPython.core.interactiveshell import InteractiveShell


class Shell:
    """Runs cells in an InteractiveShell and raises what a cell raised."""

    def __init__(self, ip: InteractiveShell):
        self.ip = ip

    def run(self, code: str):
        result = self.ip.run_cell(code)
        if result.error_before_exec is not None:
            raise result.error_before_exec
        if result.error_in_exec is not None:
            raise result.error_in_exec
        return result.result

    def line(self, magic: str, line: str = ""):
        return self.run(f"%{magic} {line}")

    @property
    def user_ns(self) -> dict:
        return self.ip.user_ns


@pytest.fixture
def shell(backend):
    """A shell pointed at the test session's local backend."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "emr_cmk_notebook")
    saved = {k: os.environ.get(k) for k in backend.env()}
    os.environ.update(backend.env())
    yield Shell(ip)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

"""Showing results and progress in the notebook, and errors as one line."""

from __future__ import annotations

import html
from typing import Any

from emr_cmk_notebook.core.errors import EmrCmkError
from emr_cmk_notebook.core.progress import ProgressLog, ProgressText


def install_error_display(shell: Any, settings: Any) -> None:
    """Show emr-cmk errors as one line (``Type: message``), no traceback; the cell still fails.

    With ``settings.debug`` (``%config EmrCmk.debug = True``) the full traceback is shown instead,
    with the botocore error an AWS error came from.
    """

    def one_line(self: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None):
        if settings.debug:
            stb = self.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
        else:
            stb = [f"{etype.__name__}: {value}"]
        # _showtraceback is what publishes an error output in a kernel and prints in a terminal.
        self._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((EmrCmkError,), one_line)


def in_kernel() -> bool:
    """True in a Jupyter kernel (a frontend shows displays and updates them in place); False in
    a terminal IPython or plain Python."""
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


class ProgressLine:
    """One line that updates in place while something long runs (a display handle in a kernel);
    in a terminal, a line per step.

    Nothing shows until the first step is reported, so work refused before it starts (a missing
    application, role or key) prints only its error.
    """

    def __init__(self, label: str):
        self.text = ProgressText(label)
        self._handle: Any = None
        self._log = None if in_kernel() else ProgressLog(label, print)

    def __call__(self, message: str) -> None:
        if self._log is not None:
            self._log(message)
            return
        from IPython.display import display

        line = _Line(self.text.line(message))
        if self._handle is None:
            self._handle = display(line, display_id=True)
        else:
            self._handle.update(line)


class _Line:
    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<code>{html.escape(self.text)}</code>"

"""IPython magics: ``%load_ext emr_cmk_notebook`` registers them."""

from __future__ import annotations

from typing import Any

from emr_cmk_notebook.magics.core import EmrCmk
from emr_cmk_notebook.magics.display import install_error_display


def load(shell: Any) -> EmrCmk:
    """Register the magics and the one-line error display on ``shell``."""
    magics = EmrCmk(shell=shell)
    shell.register_magics(magics)
    install_error_display(shell, magics)
    return magics

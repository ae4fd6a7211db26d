"""IPython magics: ``%load_ext emr_cmk_notebook`` registers them."""

from __future__ import annotations

import sys
from typing import Any

from emr_cmk_notebook.magics.core import EmrCmk
from emr_cmk_notebook.magics.display import install_error_display


def load(shell: Any) -> EmrCmk:
    """Register the magics, the one-line error display and the idle notice on ``shell``, and
    say in one line when kernels that died left sessions running."""
    from emr_cmk_notebook.sessions.ledger import orphan_notice

    magics = EmrCmk(shell=shell)
    shell.register_magics(magics)
    install_error_display(shell, magics)
    shell.events.register("pre_run_cell", magics.notify_idle)
    notice = orphan_notice()
    if notice:
        print(notice, file=sys.stderr)
    return magics

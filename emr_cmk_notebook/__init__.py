"""IPython magics and widgets for EMR Serverless sessions encrypted with a customer managed key.

``%load_ext emr_cmk_notebook`` stays light: boto3, pandas, pyspark and moto load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emr_cmk_notebook.widgets.session_launcher import SessionLauncher

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """``%load_ext emr_cmk_notebook``: register the magics."""
    from emr_cmk_notebook.magics import load

    load(ipython)


def launcher(**options: Any) -> SessionLauncher:
    """The session launcher widget (what ``%emr_session`` with no arguments shows)."""
    from emr_cmk_notebook import widgets

    return widgets.launcher(**options)

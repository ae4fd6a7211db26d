"""Interactive Spark sessions on EMR Serverless, encrypted with a customer managed key.

``SessionManager(target).start(app_id, role_arn, key="alias/k", context={"project": "x"})``
opens a Livy session whose worker disks use that key (``transport="connect"``: a Spark Connect
session); it builds a ``SessionRequest``, which ``open(request)`` also takes. ``run(code)`` returns
a ``StatementResult``; ``stop()`` ends the session (and every session it started is ended when
the process exits, unless started with ``keep=True``).
"""

from __future__ import annotations

from emr_cmk_notebook.sessions.manager import SessionManager, StopFailed
from emr_cmk_notebook.sessions.request import SessionRequest
from emr_cmk_notebook.sessions.results import SessionInfo, StatementFailed, StatementResult

__all__ = [
    "SessionInfo",
    "SessionManager",
    "SessionRequest",
    "StatementFailed",
    "StatementResult",
    "StopFailed",
]

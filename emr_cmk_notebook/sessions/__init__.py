"""Interactive Spark sessions on EMR Serverless, encrypted with a customer managed key.

``SessionManager(target).start(app_id, role_arn, key="alias/k", context={"project": "x"})``
opens a Livy session whose worker disks use that key; ``run(code)`` returns a
``StatementResult``; ``stop()`` deletes the session (and every session it started is deleted when
the process exits, unless started with ``keep=True``).
"""

from __future__ import annotations

from emr_cmk_notebook.sessions.manager import SessionManager
from emr_cmk_notebook.sessions.results import SessionInfo, StatementFailed, StatementResult

__all__ = ["SessionInfo", "SessionManager", "StatementFailed", "StatementResult"]

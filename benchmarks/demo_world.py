"""The local backend with the demo seed, for the session benchmarks (not a benchmark itself)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def demo_world(**settings: Any) -> Iterator[tuple[Any, str, str]]:
    """(backend, demo-app id, emr-session-role ARN), with this process's AWS clients pointed at
    the backend; ``settings`` go to ``backend.settings`` first. The backend stops on exit."""
    os.environ.setdefault("EMR_CMK_HOME", tempfile.mkdtemp(prefix="emr-cmk-bench-"))
    from emr_cmk_notebook import local

    with local.start(seed="demo") as backend:
        if settings:
            backend.settings(**settings)
        os.environ.update(backend.env())
        status = backend.status()
        app_id = next(a["id"] for a in status["applications"] if a["name"] == "demo-app")
        role = next(r for r in status["roles"] if r.endswith("role/emr-session-role"))
        yield backend, app_id, role

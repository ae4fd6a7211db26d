"""Where the project keeps its files on this machine."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """``EMR_CMK_HOME``, else ``~/.emr-cmk``: the local backend's state, caches."""
    return Path(os.environ.get("EMR_CMK_HOME") or Path.home() / ".emr-cmk")

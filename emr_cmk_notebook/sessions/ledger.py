"""The sessions kernels on this machine started and have not ended yet, one small JSON file each
in the Jupyter runtime directory, so that ``%load_ext`` can say (without any AWS call) that a
kernel which died without cleanup left sessions running, and ``stop --orphans`` knows where to
look. The sessions themselves (their tags or names) stay the authority on who owns them.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from emr_cmk_notebook.sessions.owner import Owner


@dataclass(frozen=True)
class Entry:
    """A session a kernel started: where it runs and who started it."""

    application_id: str
    session_id: str
    owner: Owner


def folder() -> Path:
    """Where the entries live (``$JUPYTER_RUNTIME_DIR/emr-cmk-sessions``)."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:  # IPython without Jupyter (core install): jupyter_core's own default
        data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        runtime = os.environ.get("JUPYTER_RUNTIME_DIR") or Path(data) / "jupyter" / "runtime"
        return Path(runtime) / "emr-cmk-sessions"
    return Path(jupyter_runtime_dir()) / "emr-cmk-sessions"


def record(application_id: str, session_id: int | str, owner: Owner) -> None:
    """Note a session a kernel started (kept sessions and sessions of scripts are not noted)."""
    if owner.keep or not owner.kernel:
        return
    entry = {
        "application_id": application_id,
        "session_id": str(session_id),
        "host": owner.host,
        "user": owner.user,
        "pid": owner.pid,
        "kernel": owner.kernel,
    }
    try:
        folder().mkdir(parents=True, exist_ok=True)
        _path(application_id, session_id).write_text(json.dumps(entry))
    except OSError:
        pass  # only a hint for later kernels: the session's own tags or name still say it


def forget(application_id: str, session_id: int | str) -> None:
    """Drop the note of a session that ended or that this kernel handed over."""
    with contextlib.suppress(OSError):
        _path(application_id, session_id).unlink()


def orphans() -> list[Entry]:
    """Noted sessions whose kernel (on this host) no longer runs."""
    try:
        files = sorted(folder().glob("*.json"))
    except OSError:
        return []
    found = []
    for path in files:
        try:
            raw = json.loads(path.read_text())
            owner = Owner(raw["host"], raw["user"], int(raw["pid"]), raw["kernel"])
            entry = Entry(raw["application_id"], raw["session_id"], owner)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a torn or foreign file says nothing about a session
        if owner.orphaned:
            found.append(entry)
    return found


def orphan_notice() -> str | None:
    """One line when kernels that died left sessions running; None otherwise."""
    found = orphans()
    if not found:
        return None
    apps = sorted({e.application_id for e in found})
    many = len(found) != 1
    return (
        f"emr-cmk: {len(found)} session{'s' if many else ''} started by a kernel that no longer "
        f"runs may still be running (and billed) on {', '.join(apps)}: "
        "%emr_session list shows them, %emr_session stop --orphans ends them"
    )


def _path(application_id: str, session_id: int | str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{application_id}-{session_id}")
    return folder() / f"{safe}.json"

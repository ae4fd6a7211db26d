"""Who started a session (host, user, kernel id, process id), carried by the session itself, so
that a later kernel can tell which sessions a crashed kernel left running.

Spark Connect sessions carry it in their tags; Livy sessions have no tags, so it is appended to
the session name after a ``~``. A session is orphaned when it was started (and not kept) by a
kernel of this user on this host whose process no longer runs.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import sys
from dataclasses import dataclass

TAG_PREFIX = "emr-cmk:"
# Tag values allow only these characters (botocore's TagValue pattern).
_UNSAFE = re.compile(r"[^A-Za-z0-9 /_.:=+@-]")
_STAMP = re.compile(r"^(?P<name>.*)~(?P<user>[^~@]*)@(?P<host>[^~]*)~(?P<pid>\d+)~(?P<kernel>[^~]*)"
                    r"(?P<kept>~kept)?$")  # fmt: skip


@dataclass(frozen=True)
class Owner:
    """The process that started a session."""

    host: str
    user: str
    pid: int
    # The Jupyter kernel id; "" when not started from a kernel (a script, the CLI).
    kernel: str = ""
    # Kept sessions outlive their kernel on purpose: never orphans.
    keep: bool = False

    @classmethod
    def here(cls, *, keep: bool = False) -> Owner:
        """This process, as the owner of a session it starts."""
        return cls(
            host=_safe(socket.gethostname()),
            user=_this_user(),
            pid=os.getpid(),
            kernel=_safe(kernel_id()),
            keep=keep,
        )

    def tags(self) -> dict[str, str]:
        """The owner as session tags (Spark Connect)."""
        tags = {"host": self.host, "user": self.user, "pid": str(self.pid), "kernel": self.kernel}
        if self.keep:
            tags["keep"] = "true"
        return {TAG_PREFIX + k: v for k, v in tags.items()}

    @classmethod
    def from_tags(cls, tags: dict[str, str] | None) -> Owner | None:
        """The owner a session's tags name, if they name one."""
        tags = tags or {}
        pid = tags.get(TAG_PREFIX + "pid", "")
        if not pid.isdigit():
            return None
        return cls(
            host=tags.get(TAG_PREFIX + "host", ""),
            user=tags.get(TAG_PREFIX + "user", ""),
            pid=int(pid),
            kernel=tags.get(TAG_PREFIX + "kernel", ""),
            keep=tags.get(TAG_PREFIX + "keep") == "true",
        )

    def stamp(self, name: str) -> str:
        """``name`` with the owner appended (the Livy session name)."""
        kept = "~kept" if self.keep else ""
        return f"{name}~{self.user}@{self.host}~{self.pid}~{self.kernel}{kept}"

    @classmethod
    def split(cls, stamped: str | None) -> tuple[str | None, Owner | None]:
        """The name a user gave and the owner, from a Livy session name."""
        found = _STAMP.match(stamped or "")
        if found is None:
            return stamped, None
        owner = cls(
            host=found["host"],
            user=found["user"],
            pid=int(found["pid"]),
            kernel=found["kernel"],
            keep=bool(found["kept"]),
        )
        return found["name"], owner

    @property
    def orphaned(self) -> bool:
        """Started, not kept, by a kernel of this user on this host that no longer runs."""
        if self.keep or not self.kernel or self.host != _safe(socket.gethostname()):
            return False
        # Another user's sessions are theirs to end, even when their kernel died here.
        if self.user != _this_user():
            return False
        return self.pid != os.getpid() and not _running(self.pid)

    def __str__(self) -> str:
        kernel = f", kernel {self.kernel}" if self.kernel else ""
        return f"{self.user}@{self.host} (pid {self.pid}{kernel})"


def kernel_id() -> str:
    """The id of the Jupyter kernel this process is, or "": a kernel is launched with
    ``-f CONNECTION_FILE`` (``kernel-ID.json`` under a Jupyter server)."""
    args = sys.argv[1:]
    for flag, value in zip(args, [*args[1:], ""], strict=False):
        path = value if flag == "-f" else flag.partition("--f=")[2]
        if path.endswith(".json"):
            return os.path.basename(path)[: -len(".json")].removeprefix("kernel-")
    return ""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # A killed process its parent has not reaped yet is a zombie: it runs nothing.
            if stat.read().rpartition(")")[2].split()[0] == "Z":
                return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _this_user() -> str:
    return _safe(_user()).replace("@", "_")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return str(os.getuid())


def _safe(value: str) -> str:
    return _UNSAFE.sub("_", value)[:200]

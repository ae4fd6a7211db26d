"""Who started a session: carried in tags and Livy names, and when a session is an orphan."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from emr_cmk_notebook.sessions import owner as owner_module
from emr_cmk_notebook.sessions.owner import Owner


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_tags_and_livy_names_carry_the_owner_both_ways():
    started = Owner(host="nb-host", user="ana", pid=4242, kernel="5f1c-77", keep=False)
    kept = Owner(host="nb-host", user="ana", pid=4242, kernel="5f1c-77", keep=True)
    for who in (started, kept):
        assert Owner.from_tags({"team": "risk", **who.tags()}) == who
        assert Owner.split(who.stamp("my session")) == ("my session", who)
    assert Owner.split("named by hand") == ("named by hand", None)
    assert Owner.from_tags({"team": "risk"}) is None


def test_owner_tags_fit_the_service_tag_pattern():
    import re

    weird = Owner.here()
    pattern = re.compile(r"[A-Za-z0-9 /_.:=+@-]*")
    assert all(pattern.fullmatch(v) for v in weird.tags().values())


def test_only_a_dead_kernel_of_this_user_on_this_host_that_did_not_keep_it_leaves_an_orphan():
    here = Owner.here()
    host, me = here.host, here.user
    gone = dead_pid()
    assert Owner(host, me, gone, "k1").orphaned
    assert not Owner(host, me, gone, "k1", keep=True).orphaned
    assert not Owner(host, me, gone, "").orphaned  # a script or the CLI, not a kernel
    assert not Owner("elsewhere", me, gone, "k1").orphaned
    assert not Owner(host, f"not-{me}", gone, "k1").orphaned  # another user's, theirs to end
    assert not Owner(host, me, os.getppid(), "k1").orphaned  # still running
    assert host == owner_module._safe(socket.gethostname())


def test_the_kernel_id_comes_from_the_connection_file(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/run/kernel-ab12-cd.json"])
    assert owner_module.kernel_id() == "ab12-cd"
    monkeypatch.setattr(sys, "argv", ["script.py"])
    assert owner_module.kernel_id() == ""

"""A running statement's progress display: the widget bar follows the real Spark tasks of a
Livy statement on the local backend and is closed when it ends; in a terminal it is one line
rewritten in place. A Spark Connect client without a progress handler (pyspark 3.5) shows how
long its operation has run, in the same display."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from emr_cmk_notebook.core.progress import SparkProgress
from emr_cmk_notebook.widgets.spark_progress import (
    ConnectElapsed,
    SparkProgressDisplay,
    link_of,
)
from tests.conftest import demo_app_id
from tests.sessions.conftest import pointed_at, session_role

SLOW = "import time\nprint(sc.parallelize(range(8), 8).map(lambda x: time.sleep(1) or x).sum())"


@pytest.mark.integration
def test_the_bar_follows_a_livy_statement_and_is_closed_when_it_ends(backend, demo, factory):
    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.sessions import SessionManager

    with pointed_at(backend):
        manager = SessionManager(AwsTarget(), cleanup_at_exit=False)
        try:
            manager.start(demo_app_id(demo), session_role(demo), name="progress-widget")
            link = link_of(lambda: manager.dashboard_url(manager.status()))
            display = SparkProgressDisplay(
                "%%emr_spark", mode="widget", factory=factory, dashboard=link
            )
            made = dict(factory.made)
            bar, words = made["FloatProgress"], made["HTML"]
            seen: list[float] = []
            said: list[str] = []
            bar.observe(lambda change: seen.append(change["new"]), "value")
            words.observe(lambda change: said.append(change["new"]), "value")
            result = manager.run(SLOW, progress=display.update)
            display.end("done")
        finally:
            manager.close()
    assert result.text.strip() == "28"
    # Spark's own task counts, reported by the session while the statement ran.
    assert any(0 < value < 1 for value in seen), seen
    assert bar.comm is None  # closed: no bar is left behind
    assert display.line().startswith("%%emr_spark: done (")
    # The dashboard link is on the live bar only, never in the line saved with the notebook.
    assert any('href="http://127.0.0.1:' in value for value in said), said[-1:]
    assert "http" not in display.line()


def test_a_bar_shows_only_while_a_fraction_is_known(factory):
    # pyspark 3.5 and a statement still starting report no fraction: a bar would sit at 0%.
    display = SparkProgressDisplay("Spark Connect", mode="widget", factory=factory)
    bar = dict(factory.made)["FloatProgress"]
    display.update(SparkProgress(state="running"))
    assert bar.layout.display == "none"
    display.update(SparkProgress(tasks=(3, 8), running_tasks=2))
    assert bar.layout.display is None and bar.value == 3 / 8
    display.end("done")
    assert bar.comm is None


def test_in_a_terminal_it_is_one_line_rewritten_then_ended(capsys):
    display = SparkProgressDisplay("Spark Connect", mode="text")
    display.update(SparkProgress(stages=(0, 2), tasks=(3, 8), running_tasks=2))
    display.end("interrupted")
    out = capsys.readouterr().out
    lines = out.split("\r")
    assert lines[0] == "Spark Connect: starting (0.0 s)"
    assert lines[-1].startswith("Spark Connect: interrupted · 38% · stages 0/2 · tasks 3/8 (")
    assert out.endswith(" s)\n") and out.count("\n") == 1


def test_a_finished_operation_reports_all_its_tasks():
    last = SparkProgress(stages=(1, 2), tasks=(7, 8), running_tasks=1)
    assert last.summary() == "running · 88% · stages 1/2 · tasks 7/8 (1 running)"
    assert last.ended("done").summary() == "done · 100% · stages 2/2 · tasks 8/8"
    assert last.ended("failed").summary() == "failed · 88% · stages 1/2 · tasks 7/8"
    assert SparkProgress(fraction=0.25).summary() == "running · 25%"


def test_without_a_progress_handler_an_operation_shows_its_elapsed_time_then_how_it_ended(capsys):
    elapsed = ConnectElapsed(lambda: "text", None)
    with elapsed.operation():
        time.sleep(0.2)
    assert capsys.readouterr().out == ""  # a quick operation shows nothing
    with elapsed.operation():
        time.sleep(2.2)
    done = capsys.readouterr().out.split("\r")
    # Counted from the operation's start, and ticking while it runs.
    assert running_seconds(done)[0] >= 1.0 and len(running_seconds(done)) >= 2
    assert running_seconds(done) == sorted(set(running_seconds(done)))
    assert re.fullmatch(r"Spark Connect: done \(2\.\d s\)\n", done[-1])
    for error, outcome in ((KeyboardInterrupt, "interrupted"), (ValueError, "failed")):
        with pytest.raises(error), elapsed.operation():
            time.sleep(1.3)
            raise error
        assert re.search(rf"\rSpark Connect: {outcome} \(1\.\d s\)\n$", capsys.readouterr().out)


def running_seconds(lines: list[str]) -> list[float]:
    """The elapsed times of the ``Spark Connect: running (N s)`` lines, in order."""
    found = (re.fullmatch(r"Spark Connect: running \((\d+\.\d) s\)", x) for x in lines)
    return [float(m[1]) for m in found if m]


# A Python with pyspark[connect] 3.5 (a client without registerProgressHandler), e.g. made with
#   python -m venv /tmp/pyspark35
#   /tmp/pyspark35/bin/pip install "pyspark[connect]==3.5.*" "pyarrow<16" "pandas<2.2"
PYSPARK35 = os.environ.get("PYSPARK35_PYTHON")
# Run by that Python with this tree on its path: the Spark Connect URL comes on stdin.
CLIENT_35 = """
import os, signal, sys, threading
import pyspark
from pyspark.sql.connect.session import SparkSession
from emr_cmk_notebook.widgets.spark_progress import watch_connect

spark = SparkSession.builder.remote(sys.stdin.read().strip()).create()
print("client", pyspark.__version__, hasattr(spark, "registerProgressHandler"), flush=True)
print("warm", spark.range(10).count(), flush=True)
watch_connect(spark, None, lambda: "text", lambda: None)
slow = "reflect('java.lang.Thread', 'sleep', CAST(2500 AS BIGINT)) AS slept"
print("slow", len(spark.range(0, 2, 1, 2).selectExpr(slow).collect()), flush=True)
threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    spark.range(0, 2, 1, 2).selectExpr(slow).collect()
except KeyboardInterrupt:
    spark.interruptAll()
    print("stopped", flush=True)
print("after", spark.range(5).count(), flush=True)
"""


@pytest.mark.integration
@pytest.mark.skipif(not PYSPARK35, reason="PYSPARK35_PYTHON names no Python with pyspark 3.5")
def test_a_pyspark_35_client_shows_the_elapsed_time_of_its_operations(backend, demo):
    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.sessions import SessionManager
    from emr_cmk_notebook.sessions.connect_token import connect_url

    with pointed_at(backend):
        manager = SessionManager(AwsTarget(), cleanup_at_exit=False)
        try:
            info = manager.start(
                demo_app_id(demo), session_role(demo), transport="connect", name="client-35"
            )
            endpoint = (
                AwsTarget()
                .client("emr-serverless")
                .get_session_endpoint(applicationId=info.application_id, sessionId=str(info.id))
            )
            ran = subprocess.run(
                [str(PYSPARK35), "-c", CLIENT_35],
                input=connect_url(endpoint["endpoint"], endpoint["authToken"]).encode(),
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
                capture_output=True,  # bytes: text mode would turn each \r into a new line
                timeout=240,
            )
        finally:
            manager.close()
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]
    lines = ran.stdout.decode().split("\n")
    assert re.fullmatch(r"client 3\.5\.\d+ False", lines[0])  # no progress handler to use
    assert lines[1] == "warm 10"
    slow = lines[2].split("\r")
    assert running_seconds(slow)[0] >= 1.0 and len(running_seconds(slow)) >= 2
    assert re.fullmatch(r"Spark Connect: done \(\d+\.\d s\)", slow[-1])
    assert lines[3] == "slow 2"
    assert re.fullmatch(r"Spark Connect: interrupted \(1\.\d s\)", lines[4].split("\r")[-1])
    assert lines[5:7] == ["stopped", "after 5"]

"""A running statement's progress display: the widget bar follows the real Spark tasks of a
Livy statement on the local backend and is closed when it ends; in a terminal it is one line
rewritten in place."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.core.progress import SparkProgress
from emr_cmk_notebook.widgets.spark_progress import SparkProgressDisplay, link_of
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

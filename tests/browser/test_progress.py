"""In a real browser, JupyterLab and Notebook 7: a running statement (a ``%%emr_spark`` cell on a
Livy session, a cell using a Spark Connect session's ``spark``) shows a progress bar that moves
with its tasks, and when it ends, done or failed, the bar gives way to one final line."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tests.browser.conftest import answer_dialog

pytestmark = [pytest.mark.browser, pytest.mark.integration]

NOTEBOOK = "progress.ipynb"
ROLE = "arn:aws:iam::111122223333:role/emr-session-role"
START = f"%emr_session start --application-id demo-app --role {ROLE}"
CELLS = {
    "setup": "%load_ext emr_cmk_notebook\n%emr_local start",
    "livy": f"{START} --key alias/emr-analytics",
    # Sixteen tasks of a second on the session's two cores: eight seconds of Spark work or more.
    "slow": "%%emr_spark\nimport time\n"
    "print(spark.range(0, 16, 1, 16).rdd.map(lambda row: time.sleep(1) or row.id).sum())",
    # Each task sleeps, then divides by zero: the Spark job fails after a second or two.
    "failing": "%%emr_spark\nimport time\n"
    "spark.range(0, 16, 1, 16).rdd.map(lambda row: time.sleep(1) or 1 // (row.id - row.id)).sum()",
    "connect": f"{START} --transport connect",
    "connect-slow": "rows = spark.range(0, 16, 1, 16).selectExpr(\"reflect('java.lang.Thread', "
    "'sleep', CAST(1000 AS BIGINT)) AS slept\").collect()\nprint(len(rows))",
    "stop": "%emr_session stop --all",
}
INDEX = {name: i for i, name in enumerate(CELLS)}
# The words beside the bar while it runs: the part done, Spark Connect's stages and tasks, and
# the time so far.
LIVY_RUNNING = re.compile(r"^%%emr_spark: running · (\d+)% \(\d+\.\d s\)", re.M)
CONNECT_RUNNING = re.compile(
    r"^Spark Connect: running · (\d+)% · stages \d+/1 · tasks \d+/16( \(\d+ running\))? "
    r"\(\d+\.\d s\)",
    re.M,
)
# What one cell's output shows now: the rendered bar (its width), the words, and the prompt.
LOOK = """cell => {
    const bar = cell.querySelector('.jp-OutputArea .widget-hprogress .progress-bar');
    const out = cell.querySelector('.jp-OutputArea');
    return {
        bar: bar === null ? null : bar.style.width,
        text: out === null ? '' : out.innerText,
        prompt: cell.querySelector('.jp-InputPrompt').textContent,
    };
}"""


def kernel_idle(server) -> bool:
    request = urllib.request.Request(
        f"{server.url}/api/kernels", headers={"Authorization": f"token {server.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        kernels = json.load(response)
    return any(k["execution_state"] == "idle" for k in kernels)


def open_notebook(page, server) -> None:
    """The test's notebook, open in the frontend with its kernel started."""
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(code) for code in CELLS.values()],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    nbformat.write(notebook, server.root_dir / NOTEBOOK)
    page.goto(server.notebook_url(NOTEBOOK))
    page.locator(".jp-CodeCell").nth(len(CELLS) - 1).wait_for(timeout=120_000)
    deadline = time.monotonic() + 120
    while not kernel_idle(server):
        assert time.monotonic() < deadline, "the notebook's kernel did not start"
        time.sleep(0.5)


def run(page, name: str, *, shoot: Path | None = None) -> list[dict]:
    """Run the cell ``name`` as a user does (click into it, Shift+Enter); what it showed, read
    every 0.2 s until it has run, and once more after. ``shoot``: a screenshot of the bar
    part way."""
    cell = page.locator(".jp-CodeCell").nth(INDEX[name])
    answer_dialog(page)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    handle = cell.element_handle()
    page.wait_for_function("p => /\\[(\\*|\\d+)\\]/.test(p.textContent)",
                           arg=cell.locator(".jp-InputPrompt").element_handle())  # fmt: skip
    seen = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        look = page.evaluate(LOOK, handle)
        seen.append(look)
        if re.search(r"\[\d+\]", look["prompt"]):
            break
        if shoot is not None and look["bar"] not in (None, "0%"):
            page.screenshot(path=str(shoot))
            shoot = None
        time.sleep(0.2)
    else:
        raise AssertionError(f"cell {name!r} still running after 300 s")
    # Display updates may travel after the reply: the end state is what stays.
    time.sleep(2)
    seen.append(page.evaluate(LOOK, handle))
    return seen


def moved(values: list[float]) -> bool:
    """Part way at two values or more, never going back."""
    return len({v for v in values if 0 < v < 100}) >= 2 and values == sorted(values)


def assert_moved_then_ended(seen: list[dict], running: re.Pattern, final: str) -> None:
    """While it ran: a rendered bar beside its words (the part done, the time so far), both
    moving with the tasks (each is its own widget, so a look may catch one a step ahead); then
    no bar, and the final line."""
    shown = [(look, running.search(look["text"])) for look in seen]
    shown = [(look["bar"], match) for look, match in shown if look["bar"] is not None and match]
    assert moved([float(bar.rstrip("%")) for bar, _ in shown]), seen
    assert moved([int(match.group(1)) for _, match in shown]), seen
    for look in seen:
        assert len(re.findall(r"^(%%emr_spark|Spark Connect):", look["text"], re.M)) <= 1, look
    end = seen[-1]
    assert end["bar"] is None, end
    assert re.search(final, end["text"], re.M), end
    assert not running.search(end["text"]) and "Error displaying widget" not in end["text"]


def test_a_running_statement_shows_a_moving_bar_then_one_final_line(
    jupyter, browser_context, artifacts, capsys
) -> None:
    page = browser_context.new_page()
    page.set_default_timeout(60_000)
    name = jupyter.frontend.command
    shots = Path(artifacts)
    seen = {}
    try:
        open_notebook(page, jupyter)
        for cell in CELLS:
            seen[cell] = run(page, cell, shoot=shots / f"progress-{name}-{cell}-running.png")
    except Exception:
        page.screenshot(path=str(shots / f"progress-{name}-failed.png"), full_page=True)
        with capsys.disabled():
            print("\nPAGE TEXT:\n", page.locator(".jp-Notebook").inner_text()[:6000])
        raise
    with capsys.disabled():
        print(f"\nbrowser screenshots: {shots}/progress-{name}-*.png")

    # Each start: one line that ends on the state reached, and no library's deprecation notes.
    for cell, state in (("livy", "idle"), ("connect", "STARTED")):
        text = seen[cell][-1]["text"]
        assert re.search(rf"state\s+{state}", text), text
        starts = re.findall(r"^starting a session on demo-app: session \w+ (\w+) \(", text, re.M)
        assert starts == [state], text
        assert "deprecated" not in text, text
    # While it ran: a rendered bar and beside it the part done and the time so far, moving with
    # the tasks; at the end the bar is gone and one line says it is done, then the job's output.
    assert_moved_then_ended(seen["slow"], LIVY_RUNNING, r"^%%emr_spark: done \(\d+\.\d s\)\n120$")
    # A statement that fails in Spark: its bar is gone too, and its line says it failed.
    assert any(look["bar"] is not None for look in seen["failing"]), seen["failing"]
    end = seen["failing"][-1]
    assert end["bar"] is None, end
    assert re.search(r"^%%emr_spark: failed\b.* \(\d+\.\d s\)$", end["text"], re.M), end
    assert "ZeroDivisionError" in end["text"]
    # Spark Connect: stages and tasks done of all in the words.
    assert_moved_then_ended(
        seen["connect-slow"],
        CONNECT_RUNNING,
        r"^Spark Connect: done · 100% · stages 1/1 · tasks 16/16 \(\d+\.\d s\)\n16$",
    )
    assert re.search(r"stopped session\(s\) 0, \w+", seen["stop"][-1]["text"]), seen["stop"]

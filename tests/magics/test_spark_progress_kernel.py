"""In a real Jupyter kernel: a running statement shows its progress (Livy and Spark Connect), the
display ends as one line, and the kernel's stop button interrupts the statement while the session
stays usable."""

from __future__ import annotations

import queue
import re
import time

import pytest

from tests.conftest import demo_app_id
from tests.sessions.conftest import pointed_at, session_role

pytestmark = pytest.mark.integration

# Eight tasks of 1.5 s on the backend's two cores: about six seconds of Spark work.
SLOW_LIVY = (
    "%%emr_spark\nimport time\n"
    "print(sc.parallelize(range(8), 8).map(lambda x: time.sleep(1.5) or x).sum())"
)
SLOW_CONNECT = (
    "rows = spark.range(0, 8, 1, 8).selectExpr(\"reflect('java.lang.Thread', 'sleep', "
    'CAST(1500 AS BIGINT)) AS slept").collect()\nprint(len(rows))'
)
WIDGET = "application/vnd.jupyter.widget-view+json"


class Cell:
    """What one executed cell sent: its progress lines, other text, and its reply."""

    def __init__(self) -> None:
        self.lines: list[str] = []  # text/plain of the progress display, in order
        self.bundles: list[dict] = []
        self.text = ""
        self.reply: dict = {}
        self.took = 0.0  # seconds from execute to reply

    @property
    def final(self) -> str:
        return self.lines[-1] if self.lines else ""


def run_cell(client, kernel, code: str, *, interrupt_when=None, timeout: float = 240) -> Cell:
    """Execute ``code``; interrupt the kernel once ``interrupt_when(cell)`` holds."""
    cell = Cell()
    began = time.monotonic()
    msg_id = client.execute(code)
    interrupted = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind in ("display_data", "update_display_data"):
            data = content.get("data", {})
            text = data.get("text/plain", "")
            if "%%emr_spark:" in text or "Spark Connect:" in text:
                cell.lines.append(text)
                cell.bundles.append(data)
        elif kind == "stream":
            cell.text += content["text"]
        elif kind == "error":
            cell.text += f"{content['ename']}: {content['evalue']}"
        elif kind == "status" and content["execution_state"] == "idle":
            break
        if interrupt_when is not None and not interrupted and interrupt_when(cell):
            kernel.interrupt_kernel()
            interrupted = True
    cell.reply = client.get_shell_msg(timeout=30)["content"]
    cell.took = time.monotonic() - began
    return cell


def tasks_under_way(cell: Cell) -> bool:
    return any(re.search(r"tasks [1-7]/8", line) for line in cell.lines)


def elapsed_ticking(cell: Cell) -> bool:
    return cell.final.startswith("Spark Connect: running (")


def livy_partway(cell: Cell) -> bool:
    return any(re.search(r"running · [1-9]\d?%", line) for line in cell.lines)


@pytest.fixture(scope="module")
def kernel(backend):
    from jupyter_client.manager import start_new_kernel

    demo = backend.status()
    app, role = demo_app_id(demo), session_role(demo)
    with pointed_at(backend):
        manager, client = start_new_kernel(kernel_name="python3")
    try:
        for code in (
            "%load_ext emr_cmk_notebook",
            f"%emr_session start --application-id {app} --role {role} --name progress-connect "
            "--transport connect",
            # Started last, so it is the active session %%emr_spark runs in.
            f"%emr_session start --application-id {app} --role {role} --name progress-livy",
        ):
            reply = client.execute_interactive(code, timeout=240, output_hook=lambda _: None)
            assert reply["content"]["status"] == "ok", reply["content"]
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)


def test_livy_statement_shows_real_progress_then_one_final_line(kernel):
    manager, client = kernel
    cell = run_cell(client, manager, SLOW_LIVY)
    assert cell.reply["status"] == "ok", cell.text
    assert "28" in cell.text
    # Spark's own task counts, as the session's statement reports them: part done, then done.
    assert any(re.search(r"running · [1-9]\d?%", line) for line in cell.lines), cell.lines
    assert re.fullmatch(r"%%emr_spark: done \(\d+\.\d s\)", cell.final)
    # The dashboard's pre-signed link never reaches a line that is saved with the notebook.
    assert not any("http" in line for line in cell.lines)
    # The bar was shown while it ran and is gone from the final output: nothing left frozen.
    assert WIDGET in cell.bundles[0]
    assert WIDGET not in cell.bundles[-1]


def test_interrupting_a_livy_statement_leaves_the_session_usable(kernel):
    manager, client = kernel
    cell = run_cell(client, manager, SLOW_LIVY, interrupt_when=livy_partway)
    assert cell.reply["status"] == "error"
    assert cell.reply["ename"] == "KeyboardInterrupt"
    assert cell.final.startswith("%%emr_spark: interrupted")
    assert WIDGET not in cell.bundles[-1]
    after = run_cell(client, manager, "%%emr_spark\nprint(spark.range(5).count())")
    assert after.reply["status"] == "ok", after.text
    assert "5" in after.text


def test_spark_connect_operation_shows_stages_and_tasks(kernel):
    manager, client = kernel
    cell = run_cell(client, manager, SLOW_CONNECT)
    assert cell.reply["status"] == "ok", cell.text
    assert "8" in cell.text
    assert tasks_under_way(cell), cell.lines
    assert re.fullmatch(
        r"Spark Connect: done · 100% · stages (\d+)/\1 · tasks 8/8 \(\d+\.\d s\)",
        cell.final,
    ), cell.final
    assert WIDGET not in cell.bundles[-1]


def test_interrupting_a_spark_connect_operation_leaves_the_session_usable(kernel):
    manager, client = kernel
    # Four-second tasks: an operation left running would hold both cores for eight more seconds.
    cell = run_cell(client, manager, SLOW_CONNECT.replace("1500", "4000"),
                    interrupt_when=tasks_under_way)  # fmt: skip
    assert cell.reply["status"] == "error"
    assert cell.reply["ename"] == "KeyboardInterrupt"
    assert cell.final.startswith("Spark Connect: interrupted · ")
    assert re.search(r"tasks [1-7]/8 \(", cell.final), cell.final
    assert WIDGET not in cell.bundles[-1]
    after = run_cell(client, manager, "print(spark.range(5).count())")
    assert after.reply["status"] == "ok", after.text
    assert "5" in after.text
    assert after.took < 6, "the interrupted operation kept running"


def test_stopping_a_cell_interrupts_what_it_left_running_on_the_session(kernel):
    manager, client = kernel
    # An operation the cell does not wait on itself (as a pyspark 3.5 client leaves its own).
    code = (
        "import threading, time\n"
        f"threading.Thread(target=lambda: exec({SLOW_CONNECT.replace('1500', '4000')!r}), "
        "daemon=True).start()\n"
        "time.sleep(60)"
    )
    cell = run_cell(client, manager, code, interrupt_when=tasks_under_way)
    assert cell.reply["ename"] == "KeyboardInterrupt"
    assert "Spark Connect: interrupted 1 running operation(s)" in cell.text
    after = run_cell(client, manager, "print(spark.range(5).count())")
    assert after.reply["status"] == "ok", after.text
    assert after.took < 6, "the operation left running was not interrupted"


def test_through_nbclient_each_statement_leaves_one_line_with_its_tasks(backend, tmp_path):
    """Where widgets do not render (nbclient), the progress is one text output updated in place
    that ends as the statement's last line."""
    import nbformat
    from nbclient import NotebookClient

    demo = backend.status()
    app, role = demo_app_id(demo), session_role(demo)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(code)
        for code in (
            "%load_ext emr_cmk_notebook",
            f"%emr_session start --application-id {app} --role {role} --transport connect",
            SLOW_CONNECT,
            f"%emr_session start --application-id {app} --role {role}",
            SLOW_LIVY,
            "%emr_session stop --all",
        )
    ]
    with pointed_at(backend):
        NotebookClient(notebook, kernel_name="python3", timeout=300).execute()

    def progress_outputs(cell) -> list[dict]:
        return [
            o["data"] for o in cell.outputs
            if o["output_type"] == "display_data" and ":" in o["data"].get("text/plain", "")
            and o["data"]["text/plain"].startswith(("Spark Connect:", "%%emr_spark:"))
        ]  # fmt: skip

    connect, livy = progress_outputs(notebook.cells[2]), progress_outputs(notebook.cells[4])
    assert len(connect) == 1 and len(livy) == 1, (connect, livy)
    assert re.fullmatch(
        r"Spark Connect: done · 100% · stages (\d+)/\1 · tasks 8/8 \(\d+\.\d s\)",
        connect[0]["text/plain"],
    )
    assert re.fullmatch(r"%%emr_spark: done \(\d+\.\d s\)", livy[0]["text/plain"])
    assert WIDGET not in connect[0] and WIDGET not in livy[0]


def test_the_elapsed_display_of_a_client_without_progress_reaches_its_cell_and_ends():
    """What a pyspark 3.5 client shows: the elapsed-time display, drawn from a thread while the
    cell waits, reaches the cell that waits (bar, then lines that tick) and ends as one line,
    also when the cell is interrupted."""
    from jupyter_client.manager import start_new_kernel

    # The operation is a sleep here: what is tested is the display the real one gets.
    code = (
        "import time\n"
        "from emr_cmk_notebook.widgets.spark_progress import ConnectElapsed\n"
        "with ConnectElapsed(lambda: 'auto', None).operation():\n"
        "    time.sleep({})"
    )
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        done = run_cell(client, manager, code.format(2.6))
        stopped = run_cell(client, manager, code.format(60), interrupt_when=elapsed_ticking)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert done.reply["status"] == "ok", done.text
    assert WIDGET in done.bundles[0]
    ticks = [line for line in done.lines if line.startswith("Spark Connect: running (")]
    assert len(ticks) >= 2 and ticks == sorted(set(ticks))
    assert re.fullmatch(r"Spark Connect: done \(2\.\d s\)", done.final)
    assert WIDGET not in done.bundles[-1]
    assert stopped.reply["ename"] == "KeyboardInterrupt"
    assert re.fullmatch(r"Spark Connect: interrupted \(\d\.\d s\)", stopped.final)
    assert WIDGET not in stopped.bundles[-1]

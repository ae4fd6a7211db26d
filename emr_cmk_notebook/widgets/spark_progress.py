"""A running Spark statement's progress in the cell's output: elapsed time, the part done, stages
and tasks, and the dashboard link.

In a kernel the output is an ipywidgets bar whose display also carries the same words as
``text/plain``, so a frontend that renders widgets (JupyterLab, Notebook 7, VS Code) shows the bar
and one that does not (nbclient, nbconvert) shows one line updated in place. Outside a kernel (a
terminal) it is one line rewritten with a carriage return. When the statement ends, for whatever
reason, the bar is closed and one final line stays: nothing is left frozen.

The dashboard link (GetResourceDashboard) is a pre-signed URL that lets whoever holds it in, so
it is shown only as the live bar's link: never in the text line, nor in the final line that is
saved with the notebook.
"""

from __future__ import annotations

import contextlib
import contextvars
import html
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from emr_cmk_notebook.core.progress import ProgressText, SparkProgress
from emr_cmk_notebook.widgets.factory import WidgetFactory

# A statement shorter than this shows no dashboard link (one GetResourceDashboard call fewer).
LINK_AFTER_SECONDS = 2.0
# Least time between two updates of the display itself (the widget's own values move freely).
REDRAW_SECONDS = 0.5
# A client without a progress handler: an operation shorter than this shows nothing (as pyspark
# 4 shows nothing for an operation that ends before it reports progress).
ELAPSED_AFTER_SECONDS = 1.0
MODES = ("auto", "widget", "text", "off")


def chosen_mode(mode: str) -> str:
    """``auto`` made concrete: ``widget`` in a Jupyter kernel with ipywidgets, else ``text``."""
    if mode != "auto":
        return mode
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return "text"
    from emr_cmk_notebook.magics.display import in_kernel

    return "widget" if in_kernel() else "text"


class SparkProgressDisplay:
    """The progress of one running statement (``update``), then its one final line (``end``)."""

    def __init__(
        self,
        label: str,
        *,
        mode: str = "auto",
        dashboard: Callable[[], str | None] | None = None,
        factory: WidgetFactory | None = None,
        started: float | None = None,
    ):
        self.mode = chosen_mode(mode)
        self.clock = ProgressText(label, started)
        self.last = SparkProgress(state="starting")
        self.link: str | None = None
        self.ended = False
        self._dashboard = dashboard
        self._asked_link = False
        self._drawn = 0.0
        self._bar: Any = None
        self._words: Any = None
        self._box: Any = None
        self._handle: Any = None
        if self.mode == "off":
            return
        if self.mode == "widget":
            f = factory or WidgetFactory()
            self._bar = f.float_progress(value=0.0, min=0.0, max=1.0, bar_style="info")
            self._words = f.html(self._html())
            self._box = f.hbox([self._bar, self._words])
        if self.mode == "text":
            self._write(self.line())
        else:
            from IPython.display import display

            self._handle = display(self._bundle(), raw=True, display_id=True)

    def line(self) -> str:
        """``label: running · 45% · stages 1/2 · tasks 8/16 (2.0 s)``."""
        return self.clock.line(self.last.summary())

    def update(self, progress: SparkProgress) -> None:
        """Show where the statement is now."""
        if self.ended or self.mode == "off":
            return
        self.last = progress
        if self._bar is not None:
            self._ask_link()
            fraction = progress.done_fraction
            # No fraction (only the elapsed time is known): no bar, rather than one stuck at 0%.
            self._bar.layout.display = "none" if fraction is None else None
            self._bar.value = fraction or 0.0
            self._words.value = self._html()
        now = time.monotonic()
        if now - self._drawn >= REDRAW_SECONDS:
            self._drawn = now
            self._draw()

    def end(self, outcome: str) -> None:
        """Close the bar and leave one line: ``label: done · tasks 16/16 (12.3 s)``, or
        ``label: interrupted · 40% · tasks 4/10 (3.1 s)``."""
        if self.ended:
            return
        self.ended = True
        if self.mode == "off":
            return
        self.last = self.last.ended(outcome)
        if self._box is not None:
            for widget in (self._box, self._bar, self._words):
                widget.close()
            self._box = self._bar = self._words = None
        self._draw()
        if self.mode == "text":
            self._write("\n")

    def _ask_link(self) -> None:
        waited = time.monotonic() - self.clock.started
        if self._dashboard is None or self._asked_link or waited < LINK_AFTER_SECONDS:
            return
        self._asked_link = True
        self.link = self._dashboard()

    def _draw(self) -> None:
        if self.mode == "text":
            self._write("\r" + self.line())
        elif self._handle is not None:
            self._handle.update(self._bundle(), raw=True)

    def _bundle(self) -> dict[str, Any]:
        if self._box is None:
            return {
                "text/plain": self.line(),
                "text/html": f"<code>{html.escape(self.line())}</code>",
            }
        # The widget's view, with the line for frontends that do not render widgets.
        return {**(self._box._repr_mimebundle_() or {}), "text/plain": self.line()}

    def _html(self) -> str:
        """The bar's words, with the dashboard link while it runs."""
        text = html.escape(self.line())
        if not self.link:
            return f"<code>{text}</code>"
        href = html.escape(self.link, quote=True)
        return f'<code>{text}</code> · <a href="{href}" target="_blank" rel="noopener">Spark UI</a>'

    @staticmethod
    def _write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()


@contextlib.contextmanager
def shown(label: str, **options: Any) -> Iterator[SparkProgressDisplay]:
    """A progress display for the work inside the block, ended with how the block ended."""
    display = SparkProgressDisplay(label, **options)
    try:
        yield display
    except KeyboardInterrupt:
        display.end("interrupted")
        raise
    except BaseException:
        display.end("failed")
        raise
    display.end("done")


def link_of(url: Callable[[], str | None]) -> Callable[[], str | None]:
    """``url`` that gives None instead of raising: a missing dashboard link never fails a cell."""

    def link() -> str | None:
        try:
            return url()
        except Exception:
            return None

    return link


class ConnectProgress:
    """pyspark 4's progress handler for a Spark Connect session: one display per operation
    that reports progress (a quick one reports none and shows nothing)."""

    def __init__(self, mode: Callable[[], str], dashboard: Callable[[], str | None] | None):
        self._mode = mode
        self._dashboard = dashboard
        self._shown: dict[str, SparkProgressDisplay] = {}

    def __call__(
        self, stages: Any, inflight_tasks: int, operation_id: str | None, done: bool
    ) -> None:
        key = operation_id or ""
        display = self._shown.get(key)
        if done:
            if display is not None:
                del self._shown[key]
                # pyspark reports done on the way out of the operation (from its ``with`` exit
                # or its KeyboardInterrupt handler), so an error in flight is visible.
                display.end(_outcome(sys.exc_info()[1]))
            return
        if display is None:
            display = SparkProgressDisplay(
                "Spark Connect", mode=self._mode(), dashboard=self._dashboard
            )
            self._shown[key] = display
        stages = list(stages or [])
        display.update(
            SparkProgress(
                state="running",
                stages=(sum(bool(s.done) for s in stages), len(stages)),
                tasks=(
                    sum(s.num_completed_tasks for s in stages),
                    sum(s.num_tasks for s in stages),
                ),
                running_tasks=inflight_tasks,
            )
        )


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "done"
    return "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"


class ConnectElapsed:
    """For a Spark Connect client without a progress handler (pyspark 3.5): an operation that
    runs longer than ``ELAPSED_AFTER_SECONDS`` shows how long it has run, in the same display as
    the real progress (``Spark Connect: running (12.0 s)``), ended the same way."""

    def __init__(self, mode: Callable[[], str], dashboard: Callable[[], str | None] | None):
        self._mode = mode
        self._dashboard = dashboard

    @contextlib.contextmanager
    def operation(self) -> Iterator[None]:
        """Show the elapsed time of the operation run inside the block."""
        mode = self._mode()
        if chosen_mode(mode) == "off":
            yield
            return
        began = time.monotonic()
        stop = threading.Event()
        shown: list[SparkProgressDisplay] = []

        def tick() -> None:
            if stop.wait(ELAPSED_AFTER_SECONDS):
                return
            display = SparkProgressDisplay(
                "Spark Connect", mode=mode, dashboard=self._dashboard, started=began
            )
            shown.append(display)
            while not stop.is_set():
                display.update(SparkProgress(state="running"))
                stop.wait(REDRAW_SECONDS)

        # The cell's context goes with the ticker, so its output lands in the cell that waits.
        ticker = threading.Thread(
            target=contextvars.copy_context().run, args=(tick,), name="spark-elapsed", daemon=True
        )
        ticker.start()
        outcome = "done"
        try:
            yield
        except GeneratorExit:  # the caller stopped reading the results: the operation is over
            raise
        except BaseException as error:
            outcome = _outcome(error)
            raise
        finally:
            stop.set()
            ticker.join()
            for display in shown:
                display.end(outcome)


def watch_connect(
    spark: Any, shell: Any, mode: Callable[[], str], dashboard: Callable[[], str]
) -> None:
    """Show the progress of a Spark Connect session's operations (pyspark 4's progress handler;
    a client without one, pyspark 3.5, shows the elapsed time) and, when a cell is stopped (the
    kernel's interrupt), interrupt the operations it left running: pyspark 4 interrupts the
    operation the cell was waiting for itself; a 3.5 client leaves it running, and so does any
    client for an operation started in another thread."""
    register = getattr(spark, "registerProgressHandler", None)
    if register is not None:
        register(ConnectProgress(mode, link_of(dashboard)))
    else:
        from emr_cmk_notebook.sessions.pyspark_compat import watch_operations

        watch_operations(spark, ConnectElapsed(mode, link_of(dashboard)).operation)
    if shell is not None:
        shell.events.register("post_run_cell", lambda result: interrupt_after(result, spark))


def interrupt_after(result: Any, spark: Any) -> None:
    """After a cell stopped by KeyboardInterrupt, interrupt what is still running on the
    session (``interruptAll``) and say how many operations that was."""
    if not isinstance(getattr(result, "error_in_exec", None), KeyboardInterrupt):
        return
    try:
        interrupted = spark.interruptAll()
    except Exception:  # a session that has ended runs nothing
        return
    if interrupted:
        print(f"Spark Connect: interrupted {len(interrupted)} running operation(s)")

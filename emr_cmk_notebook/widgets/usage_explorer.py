"""``UsageExplorer``: who used a KMS key, filtered by time window, application and session."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.widgets.background import Background
from emr_cmk_notebook.widgets.context_editor import error_line
from emr_cmk_notebook.widgets.factory import WidgetFactory

_STYLE = {"description_width": "110px"}
_ROWS = 200


class UsageExplorer:
    """Pick a key and filters, press Show: the calls, a summary per session and a timeline."""

    def __init__(
        self,
        target: Any = None,
        *,
        key: str = "",
        since: str = "7d",
        application_id: str = "",
        session: str = "",
        sessions: Iterable[Any] = (),
        factory: WidgetFactory | None = None,
    ):
        from emr_cmk_notebook.clients import AwsTarget

        self.target = target or AwsTarget()
        self.sessions = list(sessions)
        self.factory = factory or WidgetFactory()
        self.background = Background()
        self.usage: Any = None
        f = self.factory
        self.key = f.text(
            value=key, description="KMS key", placeholder="alias/NAME or key ARN", style=_STYLE
        )
        self.since = f.text(value=since, description="since", placeholder="7d", style=_STYLE)
        self.application = f.text(
            value=application_id, description="application", placeholder="any", style=_STYLE
        )
        self.session = f.text(value=session, description="session", placeholder="any", style=_STYLE)
        self.errors = {name: f.html() for name in ("key", "since")}
        self.show_button = f.button(description="Show usage", button_style="primary")
        self.show_button.on_click(lambda _: self._show_clicked())
        self.status = f.html()
        self.summary = f.html()
        self.timeline = f.html()
        self.frame = f.html()
        self.widget = f.vbox(
            [
                f.html("<b>KMS key usage from CloudTrail</b>"),
                f.hbox([self.key, self.errors["key"]]),
                f.hbox([self.since, self.errors["since"]]),
                self.application,
                self.session,
                self.show_button,
                self.status,
                self.summary,
                self.timeline,
                self.frame,
            ]
        )

    @classmethod
    def for_magics(cls, magics: Any, factory: WidgetFactory | None = None) -> UsageExplorer:
        """An explorer on the kernel's target, knowing the sessions this kernel started."""
        from emr_cmk_notebook.magics.usage_magic import kernel_sessions

        return cls(
            magics.target(),
            key=magics.default_key or "",
            application_id=magics.default_application or "",
            sessions=kernel_sessions(magics),
            factory=factory,
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until the CloudTrail lookup started by Show has finished."""
        self.background.wait_idle(timeout)

    def show(self) -> None:
        """Look up the key's use with the current filters, in the background."""
        from emr_cmk_notebook.usage.key_usage import KeyUsage, parse_since

        problems = {"key": None if self.key.value.strip() else "give a key alias or key ARN"}
        try:
            parse_since(self.since.value)
            problems["since"] = None
        except UserError as exc:
            problems["since"] = str(exc)
        for name, problem in problems.items():
            self.errors[name].value = error_line(problem) if problem else ""
        if any(problems.values()):
            raise UserError(next(p for p in problems.values() if p))
        filters = {
            "application_id": self.application.value.strip() or None,
            "session": self.session.value.strip() or None,
        }
        self.status.value = "<i>reading CloudTrail…</i>"
        self.show_button.disabled = True

        def work() -> None:
            try:
                usage = KeyUsage.fetch(
                    self.key.value.strip(),
                    since=self.since.value.strip(),
                    target=self.target,
                    sessions=self.sessions,
                    **filters,
                )
            except Exception as exc:  # one line, never a traceback
                self.status.value = error_line(str(exc))
            else:
                self._render(usage)
            finally:
                self.show_button.disabled = False

        self.background.run(work)

    def _show_clicked(self) -> None:
        try:
            self.show()
        except UserError as exc:
            self.status.value = error_line(str(exc))

    def _render(self, usage: Any) -> None:
        self.usage = usage
        lines = [f"<b>{html.escape(usage.headline())}</b>"]
        lines += [f"<i>{html.escape(note)}</i>" for note in usage.notes]
        self.status.value = "<br>".join(lines)
        frame = usage.to_frame()
        if frame.empty:
            self.summary.value = self.timeline.value = self.frame.value = ""
            return
        self.summary.value = usage.summary().to_html(index=False)
        self.timeline.value = usage.timeline()._repr_html_()
        more = f"<p><i>first {_ROWS} of {len(frame)} calls</i></p>" if len(frame) > _ROWS else ""
        self.frame.value = more + frame.head(_ROWS).to_html()

"""``SessionLauncher``: a form that starts an encrypted session (Livy or Spark Connect) only when
that is safe. It is a view over the kernel's sessions (``KernelSessions``), as ``%emr_session`` is:
what it starts is exposed, listed and stopped the same way.

Every AWS call (listings, DescribeKey, the readiness check, starting and stopping) runs on a
background thread, so the form never freezes; ``wait_idle`` waits for that work to finish.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.core.progress import ProgressText
from emr_cmk_notebook.render import table_html
from emr_cmk_notebook.widgets.background import Background, IsCurrent
from emr_cmk_notebook.widgets.context_editor import ContextEditor, error_line, warning_line
from emr_cmk_notebook.widgets.factory import WidgetFactory

FIELDS = ("application", "role", "key")
_STYLE = {"description_width": "110px"}
_WIDE = {"width": "520px"}
_CHECK_FIELDS = {"application_id": "application", "role": "role", "key": "key"}


class SessionLauncher:
    """Pick an application, role, key and context; see readiness; start and stop the session."""

    def __init__(
        self,
        kernel: Any = None,
        *,
        target: Any = None,
        application_id: str | None = None,
        role_arn: str | None = None,
        key: str | None = None,
        context: Mapping[str, str] | Iterable[str] = (),
        timeout: float = 900.0,
        factory: WidgetFactory | None = None,
        debounce: float = 0.5,
        transport: str = "livy",
    ):
        from emr_cmk_notebook.kernel import KernelSessions

        # The kernel's sessions: what it starts is exposed and stopped as %emr_session does.
        self.kernel = kernel if kernel is not None else KernelSessions(target=target)
        self.timeout = timeout
        self.factory = factory or WidgetFactory()
        self.background = Background(debounce)
        self.report: Any = None
        self.session: Any = None
        self.busy: str | None = None
        self.field_errors: dict[str, str | None] = dict.fromkeys(FIELDS)
        self._check_errors: dict[str, str] = {}
        self._wanted_application = application_id
        self._applications: dict[str, Any] = {}
        self._build(role_arn or "", key or "", context, transport)
        self.background.run(self._load_choices)

    @property
    def manager(self) -> Any:
        """The kernel's session manager."""
        return self.kernel.manager

    @classmethod
    def for_magics(cls, magics: Any, factory: WidgetFactory | None = None) -> SessionLauncher:
        """A launcher over the kernel's sessions, filled from the ``EmrCmk`` settings."""
        return cls(
            magics.kernel(),
            application_id=magics.default_application,
            role_arn=magics.default_role,
            key=magics.default_key,
            context=list(magics.default_context),
            timeout=magics.wait_timeout,
            factory=factory,
            transport=magics.default_transport,
        )

    # --- layout ---------------------------------------------------------------------------------

    def _build(
        self,
        role_arn: str,
        key: str,
        context: Mapping[str, str] | Iterable[str],
        transport: str,
    ) -> None:
        f = self.factory
        self.application = f.dropdown(
            description="application", options=[], style=_STYLE, layout=_WIDE
        )
        self.role = f.combobox(
            description="execution role",
            value=role_arn,
            options=[],
            ensure_option=False,
            placeholder="arn:aws:iam::ACCOUNT:role/NAME",
            style=_STYLE,
            layout=_WIDE,
        )
        self.key = f.combobox(
            description="KMS key",
            value=key,
            options=[],
            ensure_option=False,
            placeholder="alias/NAME or arn:aws:kms:REGION:ACCOUNT:key/ID",
            style=_STYLE,
            layout=_WIDE,
        )
        self.errors = {name: f.html() for name in FIELDS}
        self.application_info = f.html()
        self.key_info = f.html()
        self.context = ContextEditor(f, context)
        self.transport = f.toggle_buttons(
            options=[("Livy", "livy"), ("Spark Connect", "connect")],
            value=transport,
            description="transport",
            style=_STYLE,
        )
        self.transport_note = f.html()
        self.readiness = f.html("<i>loading choices…</i>")
        self.override = f.checkbox(
            value=False, description="start without the readiness check", indent=False
        )
        self.override_warning = f.html()
        self.start_button = f.button(description="Start", button_style="success", disabled=True)
        self.stop_button = f.button(description="Stop", button_style="danger", disabled=True)
        self.refresh_button = f.button(description="Refresh", disabled=True)
        self.status = f.html("no session started here")
        self.dashboard = f.html()
        for control in (self.application, self.role, self.key, self.transport):
            control.observe(lambda _: self._inputs_changed(), names="value")
        self.context.on_change = self._inputs_changed
        self.override.observe(lambda _: self._override_changed(), names="value")
        self.start_button.on_click(lambda _: self._start_clicked())
        self.stop_button.on_click(lambda _: self._stop_clicked())
        self.refresh_button.on_click(lambda _: self._refresh_clicked())
        self.widget = f.vbox(
            [
                f.html("<b>EMR Serverless session with your KMS key</b>"),
                f.hbox([self.application, self.errors["application"]]),
                self.application_info,
                f.hbox([self.role, self.errors["role"]]),
                f.hbox([self.key, self.errors["key"]]),
                self.key_info,
                self.context.box,
                f.hbox([self.transport, self.transport_note]),
                f.html("<b>readiness</b>"),
                self.readiness,
                f.hbox([self.override, self.override_warning]),
                f.hbox([self.start_button, self.stop_button, self.refresh_button]),
                self.status,
                self.dashboard,
            ]
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # --- the form -------------------------------------------------------------------------------

    @property
    def valid(self) -> bool:
        """True when every field holds something the service would accept."""
        return not any(self.field_errors.values()) and self.context.valid

    def problems(self) -> list[str]:
        """Every error the form shows, field by field."""
        found = [f"{name}: {error}" for name, error in self._shown_errors().items() if error]
        return found + [f"encryption context: {problem}" for problem in self.context.problems()]

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until listings, readiness checks and start or stop calls have finished."""
        self.background.wait_idle(timeout)

    def _validate(self) -> None:
        self.field_errors = {
            "application": _application_problem(self._application_view(), self.transport.value),
            "role": _role_problem(self.role.value),
            "key": _key_problem(self.key.value),
        }
        self._show_field_errors()

    def _shown_errors(self) -> dict[str, str | None]:
        return {name: self.field_errors[name] or self._check_errors.get(name) for name in FIELDS}

    def _show_field_errors(self) -> None:
        for name, error in self._shown_errors().items():
            self.errors[name].value = error_line(error) if error else ""

    def _application_view(self) -> Any:
        return self._applications.get(self.application.value)

    def _inputs_changed(self) -> None:
        self.report = None
        self._check_errors = {}
        self.key_info.value = ""
        self._validate()
        view = self._application_view()
        self.application_info.value = html.escape(_application_line(view)) if view else ""
        self.transport_note.value = (
            "<i>a SparkSession as <code>spark</code>; disks use the application's key</i>"
            if self.transport.value == "connect"
            else "<i>run code with %%emr_spark or sparkmagic's %%spark</i>"
        )
        if self.valid:
            self.readiness.value = "<i>checking…</i>"
            self.background.debounce(self._check)
        else:
            self.readiness.value = "<i>the readiness check runs once the form is valid</i>"
        self._refresh_buttons()

    def _override_changed(self) -> None:
        self.override_warning.value = (
            warning_line(
                "WARNING: the readiness check is skipped; if EMR Serverless cannot use the key "
                "the session fails to start"
            )
            if self.override.value
            else ""
        )
        self._refresh_buttons()

    def _refresh_buttons(self) -> None:
        self.start_button.disabled = self._why_not_start() is not None
        self.stop_button.disabled = self.busy is not None or self.session is None
        self.refresh_button.disabled = self.stop_button.disabled

    def _why_not_start(self) -> str | None:
        if self.busy:
            return f"wait: {self.busy}"
        if self.session is not None:
            return f"session {self.session.id} is running; stop it first"
        if not self.valid or any(self._check_errors.values()):
            return "fix the form first: " + "; ".join(self.problems())
        if self.override.value:
            return None
        if self.report is None:
            return "wait for the readiness check"
        if not self.report.ready:
            return "the key is not ready (see the readiness panel), or tick the override"
        return None

    # --- background work ------------------------------------------------------------------------

    def _load_choices(self) -> None:
        from emr_cmk_notebook import apps
        from emr_cmk_notebook.widgets import choices

        try:
            found = choices.load(self.manager.target)
        except Exception as exc:  # roles and keys can still be typed
            self.status.value = error_line(f"could not list choices: {exc}")
            self.readiness.value = ""
            return
        self._applications = {app.id: app for app in found.applications}
        options = [(choices.application_label(app), app.id) for app in found.applications]
        wanted = self._wanted_application
        if wanted and wanted not in self._applications:
            try:
                # A name (or an id listed since): resolved as everywhere else.
                wanted = apps.get_application(self.manager.target, wanted).id
            except UserError as exc:
                options.append((f"{wanted} ({exc})", wanted))
        self.application.options = options
        self.role.options = found.roles
        self.key.options = found.aliases
        self.application.value = wanted or (options[0][1] if options else None)
        self._inputs_changed()

    def _inputs(self) -> tuple[str, str, str, dict[str, str]]:
        return (
            self.application.value,
            self.role.value.strip(),
            self.key.value.strip(),
            self.context.pairs(),
        )

    def _check(self, is_current: IsCurrent) -> None:
        from emr_cmk_notebook.keys import describe_key
        from emr_cmk_notebook.readiness import check_readiness

        target = self.manager.target
        try:
            application_id, role_arn, key, context = self._inputs()
            transport = self.transport.value
            facts = describe_key(target.client("kms"), key)
            report = check_readiness(
                key, application_id, role_arn, context, target=target, transport=transport
            )
        except UserError as exc:
            # Errors about one input go beside it; DescribeKey's (no field) are about the key.
            field = _CHECK_FIELDS.get(exc.field or "key")
            self._check_failed(is_current, f"not checked: {exc}", field)
            return
        except Exception as exc:  # AWS or the network failed; show it, never a traceback
            self._check_failed(is_current, f"the readiness check failed: {exc}", None)
            return
        if not is_current():
            return
        mismatch = self._connect_key_mismatch(facts.arn, context)
        if mismatch:
            self._check_failed(is_current, mismatch, "key")
            return
        problem = facts.problem()
        self.key_info.value = (
            error_line(problem)
            if problem
            else html.escape(f"{facts.state} · {facts.key_spec} · {facts.key_usage} · {facts.arn}")
        )
        self.report = report
        self.readiness.value = report._repr_html_()
        self._refresh_buttons()

    def _connect_key_mismatch(self, key_arn: str, context: Mapping[str, str]) -> str | None:
        """Spark Connect sessions use the application's key: a different one cannot be chosen."""
        view = self._application_view()
        if self.transport.value != "connect" or view is None:
            return None
        from emr_cmk_notebook.core.encryption import DiskEncryption
        from emr_cmk_notebook.sessions.connect import application_key_problem

        return application_key_problem(view, DiskEncryption.from_parts(key_arn, context))

    def _check_failed(self, is_current: IsCurrent, message: str, field: str | None) -> None:
        if not is_current():
            return
        if field:
            self._check_errors = {field: message.removeprefix("not checked: ")}
            self._show_field_errors()
        self.readiness.value = error_line(message)
        self._refresh_buttons()

    def start(self) -> None:
        """Start the session in the background; refused while the Start button is disabled."""
        from emr_cmk_notebook.sessions.request import SessionRequest

        reason = self._why_not_start()
        if reason:
            raise UserError(f"cannot start yet: {reason}")
        application_id, role_arn, key, context = self._inputs()
        request = SessionRequest.build(
            application_id,
            role_arn,
            key,
            context,
            transport=self.transport.value,
            skip_check=bool(self.override.value),
            timeout=self.timeout,
        )
        self.busy = "starting"
        self.dashboard.value = ""
        self._refresh_buttons()
        clock = ProgressText("starting")
        self._show_status("starting", "asking for a session", clock)

        def work() -> None:
            try:
                info = self.kernel.start(
                    request, progress=lambda text: self._show_status("starting", text, clock)
                )
            except Exception as exc:  # shown as one line; the manager already cleaned up
                self.status.value = error_line(f"could not start: {exc}")
            else:
                self.session = info
                where = f"session {info.id} on {info.application_id}, disk key {info.key_text()}"
                name = self.kernel.bound_name(info)
                if name is not None:
                    where += f"; {name} is its SparkSession"
                self._show_status(info.state, where, clock, done=True)
                self.dashboard.value = self._lifetime(info)
            finally:
                self.busy = None
                self._refresh_buttons()

        self.background.run(work)

    def stop(self) -> None:
        """Stop the session this launcher started, in the background."""
        if self.session is None:
            raise UserError("no session was started here")
        info = self.session
        self.busy = "stopping"
        self._refresh_buttons()
        clock = ProgressText("stopping")
        self._show_status("stopping", f"session {info.id}", clock)

        def work() -> None:
            try:
                self.kernel.stop(info.id)
            except Exception as exc:
                self.status.value = error_line(f"could not stop session {info.id}: {exc}")
            else:
                self.session = None
                self.dashboard.value = ""
                self._show_status("stopped", f"session {info.id} ended", clock, done=True)
            finally:
                self.busy = None
                self._refresh_buttons()

        self.background.run(work)

    def _start_clicked(self) -> None:
        try:
            self.start()
        except UserError as exc:
            self.status.value = error_line(str(exc))

    def _stop_clicked(self) -> None:
        try:
            self.stop()
        except UserError as exc:
            self.status.value = error_line(str(exc))

    def _show_status(
        self, state: str, text: str, clock: ProgressText, *, done: bool = False
    ) -> None:
        timing = f"took {clock.elapsed()}" if done else clock.elapsed()
        self.status.value = f"<b>{html.escape(state)}</b> · {html.escape(text)} · {timing}"

    def _lifetime(self, info: Any) -> str:
        """The dashboard link and the session's lifetime and usage, as ``status`` says them."""
        try:
            info = self.manager.status(info.id)
        except Exception as exc:
            return warning_line(f"no lifetime figures: {exc}")
        if info.dashboard:
            link = (
                f'<a href="{html.escape(info.dashboard, quote=True)}" target="_blank" '
                'rel="noopener">Spark UI and logs (dashboard)</a>'
            )
        else:
            link = warning_line("no dashboard link")
        rows = [(k, v) for k, v in info.lifetime_rows() if k != "dashboard"]
        return link + table_html(rows)

    def _refresh_clicked(self) -> None:
        if self.session is not None:
            info = self.session
            self.background.run(lambda: setattr(self.dashboard, "value", self._lifetime(info)))


def _application_line(view: Any) -> str:
    from emr_cmk_notebook.widgets.choices import application_label

    return application_label(view) + f" · disk key: {view.key_text()}"


def _application_problem(view: Any, transport: str = "livy") -> str | None:
    if view is None:
        return "choose an application"
    if transport == "connect":
        from emr_cmk_notebook.sessions.connect import application_problem

        return application_problem(view)
    if not view.livy_enabled:
        return (
            f"application {view.id} does not have the Livy endpoint enabled; run "
            f"%emr_app update --application-id {view.id} --livy --restart"
        )
    return None


def _role_problem(value: str) -> str | None:
    from emr_cmk_notebook.sessions.conf import check_role

    if not value.strip():
        return "choose or type an execution role ARN"
    try:
        check_role(value)
    except UserError as exc:
        return str(exc)
    return None


def _key_problem(value: str) -> str | None:
    if not value.strip():
        return "choose a key alias or type a key ARN"
    try:
        DiskEncryption.from_parts(value)
    except UserError as exc:
        return str(exc)
    return None

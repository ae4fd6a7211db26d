"""Applications: their disk encryption and interactive settings, shown and changed safely."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.arns import quoted
from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import CheckFailed, ServiceFault, UserError

Progress = Callable[[str], None]
# botocore's ApplicationId and ApplicationName shapes.
APPLICATION_ID = re.compile(r"[0-9a-z]{1,64}")
APPLICATION_NAME = re.compile(r"[A-Za-z0-9._/#-]{1,64}")
KEY_CHANGE_NOTE = (
    "Sessions and jobs already running keep the key they started with; "
    "the change applies from the next job or session."
)


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class ApplicationView:
    """An application as this tool shows it."""

    id: str
    name: str
    state: str
    release: str
    arn: str
    encryption: DiskEncryption | None
    interactive: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, app: dict[str, Any]) -> ApplicationView:
        disk = app.get("diskEncryptionConfiguration") or {}
        encryption = None
        if disk.get("encryptionKeyArn"):
            encryption = DiskEncryption(
                disk["encryptionKeyArn"], disk.get("encryptionContext") or {}
            )
        return cls(
            id=app["applicationId"],
            name=app.get("name", ""),
            state=app["state"],
            release=app["releaseLabel"],
            arn=app["arn"],
            encryption=encryption,
            interactive=dict(app.get("interactiveConfiguration") or {}),
        )

    @property
    def livy_enabled(self) -> bool:
        return bool(self.interactive.get("livyEndpointEnabled"))

    @property
    def sessions_enabled(self) -> bool:
        return bool(self.interactive.get("sessionEnabled"))

    def key_text(self) -> str:
        if self.encryption is None:
            return "AWS owned key (no customer managed key set)"
        pairs = ", ".join(f"{k}={v}" for k, v in self.encryption.context.items())
        return f"{self.encryption.key}" + (f" with context {pairs}" if pairs else "")

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("application", f"{self.name} ({self.id})"),
            ("state", self.state),
            ("release", self.release),
            ("disk encryption", self.key_text()),
            ("Livy endpoint", "enabled" if self.livy_enabled else "disabled"),
            ("sessions API", "enabled" if self.sessions_enabled else "disabled"),
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "release": self.release,
            "arn": self.arn,
            "disk_encryption": self.encryption.to_dict() if self.encryption else None,
            "interactive": self.interactive,
        }

    def __repr__(self) -> str:
        return "\n".join(f"{k:<16} {v}" for k, v in self.rows())

    def _repr_html_(self) -> str:
        from emr_cmk_notebook.render import table_html

        return table_html(self.rows())


@dataclass(frozen=True)
class ApplicationChange:
    """An update's previous and new values, side by side."""

    previous: ApplicationView
    new: ApplicationView

    def changes(self) -> list[tuple[str, str, str]]:
        before, after = dict(self.previous.rows()), dict(self.new.rows())
        return [(k, before[k], after[k]) for k in before if k != "state" and before[k] != after[k]]

    def to_dict(self) -> dict[str, Any]:
        return {"previous": self.previous.to_dict(), "new": self.new.to_dict()}

    def __repr__(self) -> str:
        lines = [f"{k}: {old}  ->  {new}" for k, old, new in self.changes()] or ["no change"]
        return "\n".join([*lines, KEY_CHANGE_NOTE])

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td><code>{html.escape(o)}"
            f"</code></td><td><code>{html.escape(n)}</code></td></tr>"
            for k, o, n in self.changes()
        )
        return (
            "<table><tr><th></th><th>previous</th><th>new</th></tr>"
            f"{rows or '<tr><td colspan=3>no change</td></tr>'}</table>"
            f"<p>{html.escape(KEY_CHANGE_NOTE)}</p>"
        )


def get_application(target: AwsTarget, application: str) -> ApplicationView:
    """GetApplication for an application id or name, as an ApplicationView.

    An id that exists wins; otherwise ``application`` is a name and must match exactly one
    application that is not TERMINATED (names are not unique in EMR Serverless).
    """
    if not application:
        raise UserError("no application given", hint="pass --application-id or set a default")
    if not APPLICATION_NAME.fullmatch(application):
        raise UserError(
            f"--application-id {quoted(application)} is neither an application id (lowercase "
            "letters and digits) nor a name (up to 64 letters, digits and . _ / # -)",
            field="application_id",
        )
    from botocore.exceptions import ClientError

    emr = target.client("emr-serverless")
    if APPLICATION_ID.fullmatch(application):
        try:
            return ApplicationView.from_api(
                emr.get_application(applicationId=application)["application"]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
    live = live_applications(target)
    named = [app for app in live if app.get("name") == application]
    if len(named) > 1:
        ids = ", ".join(app["id"] for app in named)
        raise UserError(
            f"{len(named)} applications are named {application!r}: {ids}",
            field="application_id",
            hint="pass one of these ids with --application-id",
        )
    if not named:
        there = ", ".join(f"{app.get('name') or '(no name)'} ({app['id']})" for app in live)
        raise UserError(
            f"no application has the id or name {application!r}",
            field="application_id",
            hint=f"there are: {there}" if there else "there is none yet",
        )
    return get_application(target, named[0]["id"])


def live_applications(target: AwsTarget) -> list[dict[str, Any]]:
    """ListApplications: the summaries (id, name, state...) of every application not TERMINATED."""
    emr = target.client("emr-serverless")
    return [
        app
        for page in emr.get_paginator("list_applications").paginate()
        for app in page.get("applications", [])
        if app.get("state") != "TERMINATED"
    ]


def wait_for_state(
    target: AwsTarget,
    application_id: str,
    wanted: set[str],
    *,
    timeout: float = 900.0,
    progress: Progress = _quiet,
) -> ApplicationView:
    """Poll until the application is in one of ``wanted``, reporting each state seen."""
    from emr_cmk_notebook.core.polling import Backoff, poll

    def timed_out(view: ApplicationView) -> BaseException:
        return ServiceFault(
            f"application {application_id} still {view.state} after {timeout:.0f} s"
        )

    view = poll(
        lambda: get_application(target, application_id),
        until=lambda v: v.state in wanted or v.state == "TERMINATED",
        backoff=Backoff(first=0.1, most=5.0),
        timeout=timeout,
        progress=lambda v: progress(v.state),
        timed_out=timed_out,
    )
    if view.state not in wanted:
        raise ServiceFault(f"application {application_id} is {view.state}")
    return view


def ensure_started(
    target: AwsTarget,
    app: ApplicationView,
    *,
    may_start: bool = True,
    timeout: float = 900.0,
    progress: Callable[[str], None] = _quiet,
) -> ApplicationView:
    """The application once STARTED, starting it when ``may_start`` (interactive work needs it)."""
    if app.state in ("CREATING", "STOPPING"):
        app = wait_for_state(
            target, app.id, {"CREATED", "STOPPED", "STARTED"}, timeout=timeout,
            progress=lambda state: progress(f"application {state}"),
        )  # fmt: skip
    if app.state in ("CREATED", "STOPPED"):
        if not may_start:
            raise UserError(
                f"application {app.id} is {app.state}; interactive sessions need it STARTED",
                hint="start it, or let the session start it",
            )
        target.client("emr-serverless").start_application(applicationId=app.id)
    if app.state != "STARTED":
        app = wait_for_state(
            target, app.id, {"STARTED"}, timeout=timeout,
            progress=lambda state: progress(f"application {state}"),
        )  # fmt: skip
    return app


def resolve_encryption(target: AwsTarget, encryption: DiskEncryption) -> DiskEncryption:
    """The configuration with its key resolved to an ARN; refuses a key the service cannot use."""
    from emr_cmk_notebook.keys import resolve

    resolved, facts = resolve(target.client("kms"), encryption)
    problem = facts.problem()
    if problem:
        raise CheckFailed(problem, hint="choose an enabled symmetric encryption key")
    return resolved


def create_application(
    target: AwsTarget,
    name: str,
    *,
    release: str = "emr-7.13.0",
    engine: str = "SPARK",
    encryption: DiskEncryption | None = None,
    livy: bool = True,
    sessions: bool = False,
) -> ApplicationView:
    """CreateApplication with a customer managed key and the interactive endpoints asked for."""
    import uuid

    params: dict[str, Any] = {
        "name": name,
        "releaseLabel": release,
        "type": engine,
        "clientToken": str(uuid.uuid4()),
        "interactiveConfiguration": {"livyEndpointEnabled": livy, "sessionEnabled": sessions},
    }
    if encryption is not None:
        params["diskEncryptionConfiguration"] = resolve_encryption(target, encryption).to_api()
    emr = target.client("emr-serverless")
    created = emr.create_application(**params)
    return get_application(target, created["applicationId"])


UNCHANGED: Any = object()


def update_application(
    target: AwsTarget,
    application_id: str,
    *,
    encryption: DiskEncryption | None = UNCHANGED,
    livy: bool | None = None,
    sessions: bool | None = None,
    restart: bool = False,
    timeout: float = 900.0,
    progress: Progress = _quiet,
) -> ApplicationChange:
    """UpdateApplication: set (or with ``encryption=None`` unset) the key; toggle endpoints.

    The service refuses updates while the application runs; ``restart`` stops it, updates and
    starts it again.
    """
    previous = get_application(target, application_id)
    application_id = previous.id
    params: dict[str, Any] = {"applicationId": application_id, "clientToken": _token()}
    if encryption is None:
        params["diskEncryptionConfiguration"] = {}
    elif encryption is not UNCHANGED:
        params["diskEncryptionConfiguration"] = resolve_encryption(target, encryption).to_api()
    if livy is not None or sessions is not None:
        interactive = dict(previous.interactive)
        if livy is not None:
            interactive["livyEndpointEnabled"] = livy
        if sessions is not None:
            interactive["sessionEnabled"] = sessions
        params["interactiveConfiguration"] = interactive
    emr = target.client("emr-serverless")
    was_running = previous.state in ("STARTED", "STARTING")
    if was_running and not restart:
        raise UserError(
            f"application {application_id} is {previous.state} and EMR Serverless only updates "
            "stopped applications",
            hint="add --restart to stop it, update it and start it again",
        )
    if was_running:
        emr.stop_application(applicationId=application_id)
        wait_for_state(target, application_id, {"STOPPED"}, timeout=timeout, progress=progress)
    emr.update_application(**params)
    if was_running:
        emr.start_application(applicationId=application_id)
        wait_for_state(target, application_id, {"STARTED"}, timeout=timeout, progress=progress)
    return ApplicationChange(previous, get_application(target, application_id))


def _token() -> str:
    import uuid

    return str(uuid.uuid4())

"""The local EMR Serverless control plane: applications that keep every setting they are given
(disk encryption and interactive configuration included), move through the real states, and
run jobs that use their KMS key as the service does (job runs live in ``emr_jobs``, request
parsing and validation in ``emr_requests``).
"""

from __future__ import annotations

import copy
import heapq
import itertools
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from emr_cmk_notebook.core import releases
from emr_cmk_notebook.local.emr_jobs import (
    JobRunOperations,
    application_arn,
    dashboard_url,
    needs_start,
    new_id,
    paginate,
)
from emr_cmk_notebook.local.emr_requests import check_input, operation_input, route, service_model
from emr_cmk_notebook.local.errors import AwsError, not_found, validation
from emr_cmk_notebook.local.identity import Identity
from emr_cmk_notebook.local.settings import checked_setting
from emr_cmk_notebook.local.wire import ApiRequest, ApiResponse, rest_json_error, rest_json_ok

log = logging.getLogger(__name__)

# interactiveConfiguration flag -> the first release that supports it.
_INTERACTIVE_RELEASES = {
    "livyEndpointEnabled": releases.LIVY_ENDPOINT,
    "sessionEnabled": releases.SESSIONS,
}
_ENGINES = ("spark", "hive")
_APP_DEFAULTS = {
    "autoStartConfiguration": {"enabled": True},
    "autoStopConfiguration": {"enabled": True, "idleTimeoutMinutes": 15},
    "architecture": "X86_64",
}
_SUMMARY_FIELDS = ("name", "releaseLabel", "type", "architecture")
_TAGGABLE_ARN = re.compile(
    r"arn:aws[a-zA-Z0-9-]*:emr-serverless:([^:]+):(\d{12}):/applications/([0-9a-zA-Z]+)"
    r"(?:/(jobruns|sessions)/([0-9a-zA-Z]+))?"
)


class JobExecutor(Protocol):
    """Runs a job run's entry point (see ``local/job_runner.py``)."""

    def start(self, run: Any, finished: Callable[[bool, str], None]) -> None: ...

    def cancel(self, run_id: str) -> None: ...

    def close(self) -> None: ...


class KeyService(Protocol):
    """What the emulated service needs from the local KMS."""

    def check_caller_key_access(
        self,
        identity: Identity,
        region: str,
        key_arn: str,
        encryption_context: Mapping[str, str] | None = None,
    ) -> None:
        """The caller's key check at submission; raises ``AwsError`` with the KMS cause."""

    def use_key_for_disks(
        self,
        *,
        account_id: str,
        region: str,
        key_arn: str,
        encryption_context: dict[str, str],
        source_arn: str,
        role_arn: str | None = None,
    ) -> None:
        """GenerateDataKey + Decrypt as the service principal; raises ``AwsError`` when refused."""


class AccessRules(Protocol):
    """Who may do what (see ``local/authorization.py``)."""

    def authorize_request(
        self, identity: Identity, region: str, operation: str, data: Mapping[str, Any]
    ) -> None:
        """Raise a 403 ``AwsError`` when the caller may not make this call."""

    def execution_role_problem(self, role_arn: str) -> str | None:
        """Why the service cannot assume ``role_arn``, or None."""


@dataclass
class Application:
    """One application: where it lives, the API settings it was given, and its state."""

    account: str
    region: str
    id: str
    config: dict[str, Any]
    tags: dict[str, str]
    created_at: float
    updated_at: float
    state: str = "CREATING"
    state_details: str = ""

    @property
    def arn(self) -> str:
        return application_arn(self.region, self.account, self.id)

    def view(self) -> dict[str, Any]:
        """The ``Application`` shape GetApplication answers with."""
        out = {
            "applicationId": self.id,
            "arn": self.arn,
            **copy.deepcopy(self.config),
            "state": self.state,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "tags": dict(self.tags),
        }
        if self.state_details:
            out["stateDetails"] = self.state_details
        return out

    def summary(self) -> dict[str, Any]:
        """The ``ApplicationSummary`` shape ListApplications answers with."""
        out = {"id": self.id, "arn": self.arn, "state": self.state}
        out.update({k: self.config[k] for k in _SUMMARY_FIELDS if k in self.config})
        out.update({"createdAt": self.created_at, "updatedAt": self.updated_at})
        if self.state_details:
            out["stateDetails"] = self.state_details
        return out


class Timers:
    """One daemon thread that runs state transitions when they fall due; 0 s runs them at once."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay`` seconds (in the caller's thread when ``delay`` <= 0)."""
        if delay <= 0:
            action()
            return
        with self._wake:
            if self._closed:
                return
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), action))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="emr-timers", daemon=True)
                self._thread.start()
            self._wake.notify()

    def clear(self) -> None:
        """Forget every pending transition."""
        with self._wake:
            self._heap.clear()

    def close(self) -> None:
        """Stop the thread; pending transitions never run."""
        with self._wake:
            self._closed = True
            self._heap.clear()
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                if self._closed:
                    return
                action = heapq.heappop(self._heap)[2]
            try:
                action()
            except Exception:  # a failed transition must not stop the others
                log.exception("EMR Serverless state transition failed")


class EmrServerless(JobRunOperations):
    """The EMR Serverless API for every account and region of the local backend."""

    def __init__(
        self,
        keys: KeyService,
        *,
        state_delay: float = 0.5,
        job_step_delay: float = 0.3,
        clock: Callable[[], float] = time.time,
        executor: JobExecutor | None = None,
        access: AccessRules | None = None,
    ):
        self.keys = keys
        # IAM permissions and role trust; without rules every call is allowed.
        self.access = access
        # Runs entry points for real; without one a run succeeds once its KMS calls pass.
        self.executor = executor
        self.state_delay = state_delay
        self.job_step_delay = job_step_delay
        self._clock = clock
        self._lock = threading.RLock()
        self._timers = Timers()
        self._apps: dict[str, Application] = {}
        self._app_tokens: dict[tuple[str, str, str], str] = {}
        self._runs = {}
        self._run_tokens = {}
        self._handlers: dict[str, Callable[[ApiRequest, dict[str, Any]], dict[str, Any]]] = {
            "CreateApplication": self._create_application_op,
            "GetApplication": self._get_application,
            "ListApplications": self._list_applications,
            "UpdateApplication": self._update_application,
            "DeleteApplication": self._delete_application,
            "StartApplication": self._start_application,
            "StopApplication": self._stop_application,
            "TagResource": self._tag_resource,
            "UntagResource": self._untag_resource,
            "ListTagsForResource": self._list_tags,
            "GetResourceDashboard": self._resource_dashboard,
            **self._job_handlers(),
        }
        # Tag stores of the resources below an application, by the ARN path word naming them.
        self._tagged: dict[str, Callable[[Application, str], dict[str, str]]] = {
            "jobruns": lambda app, run_id: self._run_of(app, run_id).tags
        }

    # --- public API ------------------------------------------------------------------------------

    def add_operations(
        self, handlers: Mapping[str, Callable[[ApiRequest, dict[str, Any]], dict[str, Any]]]
    ) -> None:
        """Answer more operations (the sessions API lives in ``local/sessions_api.py``)."""
        self._handlers.update(handlers)

    def add_tagged_resources(
        self, kind: str, tags_of: Callable[[Application, str], dict[str, str]]
    ) -> None:
        """Let TagResource reach ``/applications/ID/{kind}/SUB_ID`` ARNs: ``tags_of(app, sub_id)``
        returns the resource's own (mutable) tags or raises ``ResourceNotFoundException``."""
        self._tagged[kind] = tags_of

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answer one EMR Serverless API request."""
        try:
            operation, params = route(request.method, request.path)
            handler = self._handlers.get(operation)
            if handler is None:
                raise AwsError(
                    "NotImplementedException",
                    f"{operation} is not available in the local backend yet",
                    501,
                )
            data = operation_input(operation, request, params)
            self.authorize(request.identity, request.region, operation, data)
            check_input(operation, data)
            return rest_json_ok(handler(request, data))
        except AwsError as err:
            return rest_json_error(err)

    def authorize(
        self, identity: Identity, region: str, operation: str, data: Mapping[str, Any]
    ) -> None:
        """Refuse what the caller's IAM policies do not allow (403 ``AccessDeniedException``)."""
        if self.access is not None:
            self.access.authorize_request(identity, region, operation, data)

    def execution_role_problem(self, role_arn: str) -> str | None:
        """Why the service cannot assume a run's or session's execution role, or None."""
        return self.access.execution_role_problem(role_arn) if self.access is not None else None

    def create_application(
        self, account_id: str, region: str, *, started: bool = False, **api_fields: Any
    ) -> dict[str, Any]:
        """CreateApplication with the API's validation; ``started`` makes it STARTED at once."""
        members = service_model().operation_model("CreateApplication").input_shape.members
        unknown = sorted(set(api_fields) - set(members))
        if unknown:
            raise TypeError(f"CreateApplication has no member(s) {unknown}")
        data = {"clientToken": str(uuid.uuid4()), **copy.deepcopy(api_fields)}
        check_input("CreateApplication", data)
        created = self._create(account_id, region, data)
        if started:
            with self._lock:
                app = self._apps[created["applicationId"]]
                app.state, app.updated_at = "STARTED", self._clock()
        return created

    def set_delays(
        self, *, state_delay: float | None = None, job_step_delay: float | None = None
    ) -> None:
        """Change how long application and job-run state transitions take (seconds)."""
        if state_delay is not None:
            self.state_delay = checked_setting("state_delay", state_delay)
        if job_step_delay is not None:
            self.job_step_delay = checked_setting("job_step_delay", job_step_delay)

    def applications(self) -> list[dict[str, Any]]:
        """Every live application, for ``emr-cmk local status``."""
        with self._lock:
            return [
                {
                    "name": app.config.get("name"),
                    "id": app.id,
                    "account": app.account,
                    "region": app.region,
                    "state": app.state,
                    "releaseLabel": app.config["releaseLabel"],
                    "arn": app.arn,
                }
                for app in self._apps.values()
                if app.state != "TERMINATED"
            ]

    def application_view(self, account_id: str, region: str, app_id: str) -> dict[str, Any]:
        """GetApplication's ``application`` as ``account_id`` sees it (ResourceNotFound if not)."""
        with self._lock:
            return self._application(account_id, region, app_id).view()

    def reset(self) -> None:
        """Forget every application and job run."""
        if self.executor is not None:
            self.executor.close()
        with self._lock:
            self._timers.clear()
            self._apps.clear()
            self._app_tokens.clear()
            self._runs.clear()
            self._run_tokens.clear()

    def close(self) -> None:
        """Stop the transition thread and any running entry point."""
        self._timers.close()
        if self.executor is not None:
            self.executor.close()

    # --- applications ----------------------------------------------------------------------------

    def _create_application_op(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        return self._create(request.identity.account_id, request.region, data)

    def _create(self, account: str, region: str, data: dict[str, Any]) -> dict[str, Any]:
        config = _with_defaults({k: v for k, v in data.items() if k not in ("clientToken", "tags")})
        _check_application(config)
        token = (account, region, data["clientToken"])
        with self._lock:
            app = self._apps.get(self._app_tokens.get(token, ""))
            fresh = app is None or app.state == "TERMINATED"
            if fresh:
                now = self._clock()
                tags = dict(data.get("tags") or {})
                app = Application(account, region, new_id(), config, tags, now, now)
                self._apps[app.id] = app
                self._app_tokens[token] = app.id
            out = {"applicationId": app.id, "arn": app.arn}
            if "name" in app.config:
                out["name"] = app.config["name"]
        if fresh:
            self._after(self.state_delay, app.id, {"CREATING"}, "CREATED")
        return out

    def _application(
        self, account: str, region: str, app_id: str, *, terminated: bool = False
    ) -> Application:
        """The caller's application, or ResourceNotFoundException (another account's is unseen)."""
        app = self._apps.get(app_id)
        if (
            app is None
            or (app.account, app.region) != (account, region)
            or (app.state == "TERMINATED" and not terminated)
        ):
            raise not_found(f"Application {app_id} does not exist")
        return app

    def _app_for(self, request: ApiRequest, data: dict[str, Any], **kw: bool) -> Application:
        return self._application(
            request.identity.account_id, request.region, data["applicationId"], **kw
        )

    def _get_application(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"application": self._app_for(request, data, terminated=True).view()}

    def _list_applications(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        states = set(data.get("states") or ()) or None
        with self._lock:
            apps = [
                app.summary()
                for app in self._apps.values()
                if (app.account, app.region) == (request.identity.account_id, request.region)
                and (app.state in states if states else app.state != "TERMINATED")
            ]
        apps.sort(key=lambda a: a["createdAt"], reverse=True)
        page, token = paginate(apps, data)
        return {"applications": page, **({"nextToken": token} if token else {})}

    def _update_application(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        changes = {k: v for k, v in data.items() if k not in ("applicationId", "clientToken")}
        with self._lock:
            app = self._app_for(request, data)
            _require_state(app, "updated", ("STOPPED", "CREATED"))
            config = {**app.config, **copy.deepcopy(changes)}
            # An empty object is the documented way to remove the application's key.
            if changes.get("diskEncryptionConfiguration") == {}:
                del config["diskEncryptionConfiguration"]
            config = _with_defaults(config)
            _check_application(config)
            app.config, app.updated_at = config, self._clock()
            return {"application": app.view()}

    def _delete_application(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            app = self._app_for(request, data)
            _require_state(app, "deleted", ("STOPPED", "CREATED"))
            app.state, app.updated_at = "TERMINATED", self._clock()
        return {}

    def _start_application(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            app = self._app_for(request, data)
            if app.state in ("STARTING", "STARTED"):
                return {}
            _require_state(app, "started", ("CREATED", "STOPPED"))
            app.state, app.updated_at = "STARTING", self._clock()
        self._start_later(app.id)
        return {}

    def start_for_work(self, account_id: str, region: str, app_id: str, work: str) -> None:
        """Auto-start the application for new ``work`` when it is CREATED or STOPPED (refused with
        a ValidationException when auto-start is disabled or it cannot take work)."""
        with self._lock:
            app = self._application(account_id, region, app_id)
            starts = needs_start(app, work)
            if starts:
                app.state, app.updated_at = "STARTING", self._clock()
        if starts:
            self._start_later(app.id)

    def _start_later(self, app_id: str) -> None:
        """STARTING becomes STARTED after the state delay (call without holding the lock)."""
        self._after(self.state_delay, app_id, {"STARTING"}, "STARTED")

    def _stop_application(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            app = self._app_for(request, data)
            if app.state in ("STOPPING", "STOPPED"):
                return {}
            _require_state(app, "stopped", ("STARTED", "STARTING"))
            if self._has_active_runs(app.id):
                raise validation(
                    f"Application {app.id} has job runs that are not finished; "
                    "cancel them or wait for them to end before stopping the application"
                )
            app.state, app.updated_at = "STOPPING", self._clock()
        self._after(self.state_delay, app.id, {"STOPPING"}, "STOPPED")
        return {}

    def _after(self, delay: float, app_id: str, expected: set[str], target: str) -> None:
        self._timers.call_later(delay, lambda: self._transition(app_id, expected, target))

    def _transition(self, app_id: str, expected: set[str], target: str) -> None:
        with self._lock:
            app = self._apps.get(app_id)
            if app is None or app.state not in expected:
                return
            app.state, app.updated_at = target, self._clock()
        if target == "STARTED":
            self._application_started(app_id)

    # --- tags and dashboards ---------------------------------------------------------------------

    def _tags_of(self, request: ApiRequest, arn: str) -> dict[str, str]:
        match = _TAGGABLE_ARN.fullmatch(arn)
        missing = not_found(f"Resource {arn} does not exist")
        if match is None:
            raise missing
        region, account, app_id, kind, sub_id = match.groups()
        if (account, region) != (request.identity.account_id, request.region):
            raise missing
        app = self._application(account, region, app_id)
        if kind is None:
            return app.tags
        return self._tagged[kind](app, sub_id)

    def _tag_resource(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._tags_of(request, data["resourceArn"]).update(data["tags"])
        return {}

    def _untag_resource(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            tags = self._tags_of(request, data["resourceArn"])
            for key in data["tagKeys"]:
                tags.pop(key, None)
        return {}

    def _list_tags(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"tags": dict(self._tags_of(request, data["resourceArn"]))}

    def _resource_dashboard(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            app = self._app_for(request, data)
        return {"url": dashboard_url(request, f"{app.id}/{data['resourceId']}")}


def _require_state(app: Application, verb: str, allowed: tuple[str, ...]) -> None:
    if app.state not in allowed:
        raise validation(
            f"Application {app.id} must be in one of the statuses to be {verb}: "
            f"[{', '.join(allowed)}]. Current status: {app.state}"
        )


def _with_defaults(config: dict[str, Any]) -> dict[str, Any]:
    out = {**copy.deepcopy(_APP_DEFAULTS), **config}
    stop = out["autoStopConfiguration"]
    if stop.get("enabled", True) and "idleTimeoutMinutes" not in stop:
        out["autoStopConfiguration"] = {**stop, "idleTimeoutMinutes": 15}
    return out


def _check_application(config: Mapping[str, Any]) -> None:
    """The service's rules beyond the model: engine type, release label, interactive features."""
    engine = config["type"]
    if engine.lower() not in _ENGINES:
        raise validation(f"Application type {engine!r} is not supported; use Spark or Hive")
    label = config["releaseLabel"]
    release = releases.parse_release(label)
    if release is None:
        raise validation(
            f"Release label {label!r} is not valid; use the form {releases.FORMS}, "
            "e.g. emr-7.13.0 or emr-spark-8.0.0"
        )
    if release < releases.SERVERLESS:
        raise validation(
            f"Release label {label} is not supported by EMR Serverless; "
            f"use {releases.SERVERLESS} or later"
        )
    interactive = config.get("interactiveConfiguration") or {}
    for flag, needed in _INTERACTIVE_RELEASES.items():
        if interactive.get(flag) and release < needed:
            raise validation(
                f"interactiveConfiguration.{flag} needs release label {needed} or later; "
                f"the application uses {label}"
            )

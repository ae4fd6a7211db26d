"""Job runs of the local EMR Serverless: submission rules, the state machine, and the KMS calls
the service makes for worker disks when a run starts."""

from __future__ import annotations

import base64
import copy
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emr_cmk_notebook.core.job_disks import job_run_disk
from emr_cmk_notebook.local import usage
from emr_cmk_notebook.local.errors import AwsError, not_found, validation

if TYPE_CHECKING:
    from emr_cmk_notebook.core.encryption import DiskEncryption
    from emr_cmk_notebook.local.emr import Application, JobExecutor, KeyService, Timers
    from emr_cmk_notebook.local.identity import Identity
    from emr_cmk_notebook.local.wire import ApiRequest

_ID_ALPHABET = string.ascii_lowercase + string.digits
_NEXT = {
    "SUBMITTED": "PENDING",
    "PENDING": "SCHEDULED",
    "SCHEDULED": "RUNNING",
    "RUNNING": "SUCCESS",
}
_FINAL = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
_DRIVERS = {"spark": "sparkSubmit", "hive": "hive"}
_RUN_FIELDS = (
    "name",
    "configurationOverrides",
    "executionIamPolicy",
    "retryPolicy",
    "flexExecution",
)


@dataclass
class JobRun:
    """One job run: the request as given, the key in effect when it was submitted, and its state."""

    account: str
    region: str
    app_id: str
    id: str
    request: dict[str, Any]
    created_by: str
    release_label: str
    network: dict[str, Any] | None
    # The diskEncryptionConfiguration in effect (job override, else the application's) or None.
    disk: dict[str, Any] | None
    created_at: float
    updated_at: float
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "SUBMITTED"
    state_details: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    waiting_for_application: bool = False

    @property
    def app_arn(self) -> str:
        return application_arn(self.region, self.account, self.app_id)

    @property
    def arn(self) -> str:
        return f"{self.app_arn}/jobruns/{self.id}"

    def summary(self) -> dict[str, Any]:
        """The ``JobRunSummary`` shape ListJobRuns answers with."""
        out = {
            "applicationId": self.app_id,
            "id": self.id,
            "arn": self.arn,
            "mode": self.request.get("mode", "BATCH"),
            "createdBy": self.created_by,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "executionRole": self.request["executionRoleArn"],
            "state": self.state,
            "stateDetails": self.state_details,
            "releaseLabel": self.release_label,
            "attempt": 1,
            "attemptCreatedAt": self.created_at,
            "attemptUpdatedAt": self.updated_at,
        }
        if "name" in self.request:
            out["name"] = self.request["name"]
        return out

    def view(self) -> dict[str, Any]:
        """The ``JobRun`` shape GetJobRun answers with."""
        out = self.summary()
        out["jobRunId"] = out.pop("id")
        out["jobDriver"] = copy.deepcopy(self.request.get("jobDriver", {}))
        out["tags"] = dict(self.tags)
        out["executionTimeoutMinutes"] = self.request.get("executionTimeoutMinutes", 720)
        out.update({k: copy.deepcopy(self.request[k]) for k in _RUN_FIELDS if k in self.request})
        if self.network:
            out["networkConfiguration"] = copy.deepcopy(self.network)
        if self.started_at is not None:
            out["startedAt"] = self.started_at
        if self.ended_at is not None:
            out["endedAt"] = self.ended_at
            out.update(usage.figures(self.ended_at - (self.started_at or self.ended_at)))
        return out


class JobRunOperations:
    """The job-run operations and state machine of ``EmrServerless`` (mixed into it, sharing its
    lock, timers and applications; it provides ``_app_for``, ``_start_later`` and ``_apps``)."""

    keys: KeyService
    executor: JobExecutor | None
    job_step_delay: float
    _lock: threading.RLock
    _clock: Callable[[], float]
    _timers: Timers
    _apps: dict[str, Application]
    _runs: dict[str, JobRun]
    _run_tokens: dict[tuple[str, str], str]
    _app_for: Callable[..., Application]
    _start_later: Callable[[str], None]
    execution_role_problem: Callable[[str], str | None]

    def _job_handlers(self) -> dict[str, Callable[[ApiRequest, dict[str, Any]], dict[str, Any]]]:
        return {
            "StartJobRun": self._start_job_run,
            "GetJobRun": self._get_job_run,
            "ListJobRuns": self._list_job_runs,
            "CancelJobRun": self._cancel_job_run,
            "GetDashboardForJobRun": self._job_run_dashboard,
        }

    def _start_job_run(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        token = (data["applicationId"], data["clientToken"])
        with self._lock:
            app = self._app_for(request, data)
            if token in self._run_tokens:
                return _started(self._runs[self._run_tokens[token]])
            _check_can_run(app, data)
            disk = _effective_disk(app, data)
        if disk is not None:
            context = disk_context(disk.get("encryptionContext"), app.id)
            check_submission_key(
                self.keys, request.identity, request.region, disk["encryptionKeyArn"], context
            )
        with self._lock:
            app = self._app_for(request, data)
            if token in self._run_tokens:
                return _started(self._runs[self._run_tokens[token]])
            _check_can_run(app, data)
            now = self._clock()
            starts_application = needs_start(app, "job runs")
            if starts_application:
                app.state, app.updated_at = "STARTING", now
            identity = request.identity
            run = JobRun(
                account=app.account,
                region=app.region,
                app_id=app.id,
                id=new_id(),
                request={k: v for k, v in data.items() if k not in ("applicationId", "tags")},
                created_by=identity.arn or f"arn:aws:iam::{identity.account_id}:root",
                release_label=app.config["releaseLabel"],
                network=copy.deepcopy(app.config.get("networkConfiguration")),
                disk=disk,
                created_at=now,
                updated_at=now,
                tags=dict(data.get("tags") or {}),
            )
            self._runs[run.id] = run
            self._run_tokens[token] = run.id
        if starts_application:
            self._start_later(app.id)
        self._step_later(run.id, "SUBMITTED")
        return _started(run)

    def _run_of(self, app: Application, run_id: str) -> JobRun:
        run = self._runs.get(run_id)
        if run is None or run.app_id != app.id:
            raise not_found(f"Job run {run_id} does not exist in application {app.id}")
        return run

    def _get_job_run(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            app = self._app_for(request, data, terminated=True)
            return {"jobRun": self._run_of(app, data["jobRunId"]).view()}

    def _list_job_runs(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        states = set(data.get("states") or ())
        after = data.get("createdAtAfter", float("-inf"))
        before = data.get("createdAtBefore", float("inf"))
        mode = data.get("mode")
        with self._lock:
            app = self._app_for(request, data, terminated=True)
            runs = [
                run.summary()
                for run in self._runs.values()
                if run.app_id == app.id
                and (not states or run.state in states)
                and after <= run.created_at <= before
                and (mode is None or run.request.get("mode", "BATCH") == mode)
            ]
        runs.sort(key=lambda r: r["createdAt"], reverse=True)
        page, next_token = paginate(runs, data)
        return {"jobRuns": page, **({"nextToken": next_token} if next_token else {})}

    def _cancel_job_run(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            run = self._run_of(self._app_for(request, data), data["jobRunId"])
            if run.state in _FINAL:
                raise validation(
                    f"Job run {run.id} is already {run.state}; "
                    "only job runs that have not finished can be cancelled"
                )
            cancelling = run.state != "CANCELLING"
            if cancelling:
                self._set_state(run, "CANCELLING")
        if cancelling:
            if self.executor is not None:
                self.executor.cancel(run.id)
            self._timers.call_later(self.job_step_delay, lambda: self._cancelled(run.id))
        return {"applicationId": run.app_id, "jobRunId": run.id}

    def _job_run_dashboard(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            run = self._run_of(self._app_for(request, data), data["jobRunId"])
        return {"url": dashboard_url(request, f"{run.app_id}/jobruns/{run.id}")}

    # --- the state machine -----------------------------------------------------------------------

    def _set_state(self, run: JobRun, state: str, details: str = "") -> None:
        now = self._clock()
        run.state, run.state_details, run.updated_at = state, details, now
        if state == "RUNNING":
            run.started_at = now
        if state in _FINAL:
            run.ended_at = now

    def _step_later(self, run_id: str, expected: str) -> None:
        self._timers.call_later(self.job_step_delay, lambda: self._step(run_id, expected))

    def _step(self, run_id: str, expected: str) -> None:
        """Move a run from ``expected`` to the next state, unless it was cancelled meanwhile."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.state != expected:
                return
            app = self._apps.get(run.app_id)
            if expected == "PENDING" and (app is None or app.state != "STARTED"):
                run.waiting_for_application = True
                return
            target = _NEXT[expected]
            self._set_state(run, target)
        if target == "RUNNING" and not self._role_assumed(run):
            return
        if target == "RUNNING" and run.disk is not None and not self._use_disk_key(run, run.disk):
            return
        if target == "RUNNING" and self.executor is not None:
            self.executor.start(run, lambda ok, details: self._finished(run_id, ok, details))
            return
        if target not in _FINAL:
            self._step_later(run_id, target)

    def _finished(self, run_id: str, ok: bool, details: str) -> None:
        """The entry point ended: SUCCESS, or FAILED with what it said last."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None and run.state == "RUNNING":
                self._set_state(run, "SUCCESS" if ok else "FAILED", details)

    def _role_assumed(self, run: JobRun) -> bool:
        """The service assumes the run's execution role; a role it cannot assume fails the run."""
        problem = self.execution_role_problem(run.request["executionRoleArn"])
        if problem:
            with self._lock:
                if run.state == "RUNNING":
                    self._set_state(run, "FAILED", problem)
            return False
        return True

    def _use_disk_key(self, run: JobRun, disk: dict[str, Any]) -> bool:
        """The service's GenerateDataKey + Decrypt for the run's disks; a refusal fails the run."""
        key_arn = disk["encryptionKeyArn"]
        context = disk_context(disk.get("encryptionContext"), run.app_id)
        try:
            self.keys.use_key_for_disks(
                account_id=run.account,
                region=run.region,
                key_arn=key_arn,
                encryption_context=context,
                source_arn=run.app_arn,
                role_arn=run.request["executionRoleArn"],
            )
        except AwsError as err:
            with self._lock:
                if run.state == "RUNNING":
                    self._set_state(run, "FAILED", key_failure(key_arn, err))
            return False
        return True

    def _cancelled(self, run_id: str) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None and run.state == "CANCELLING":
                self._set_state(run, "CANCELLED")

    def _application_started(self, app_id: str) -> None:
        """Runs that waited in PENDING for their application move on."""
        with self._lock:
            waiting = [
                run
                for run in self._runs.values()
                if run.app_id == app_id and run.waiting_for_application and run.state == "PENDING"
            ]
            for run in waiting:
                run.waiting_for_application = False
        for run in waiting:
            self._step_later(run.id, "PENDING")

    def _has_active_runs(self, app_id: str) -> bool:
        return any(r.app_id == app_id and r.state not in _FINAL for r in self._runs.values())


def key_failure(key_arn: str, err: AwsError) -> str:
    """How a run or a submission explains that KMS refused its key."""
    return f"Unable to use KMS key {key_arn}: {err.code}: {err.message}"


def paginate(items: list[dict[str, Any]], data: Mapping[str, Any]) -> tuple[list, str | None]:
    """One page of ``items`` for ``maxResults`` / ``nextToken`` (tokens are opaque offsets)."""
    start = 0
    if data.get("nextToken"):
        try:
            start = int(base64.urlsafe_b64decode(data["nextToken"]).decode())
        except ValueError:
            raise validation(
                "nextToken is not valid; pass the nextToken of the last answer"
            ) from None
    end = start + (data.get("maxResults") or 50)
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], token


def dashboard_url(request: ApiRequest, path: str) -> str:
    """A loopback URL standing in for the Spark UI (the local backend serves no dashboard)."""
    host = request.headers.get("host") or "127.0.0.1"
    return f"http://{host}/_local/dashboard/{path}"


def new_id() -> str:
    """An id shaped like the service's: 16 lowercase alphanumerics starting with ``00``."""
    return "00" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def application_arn(region: str, account: str, app_id: str) -> str:
    """The ARN of application ``app_id``; job runs and sessions hang below it."""
    return f"arn:aws:emr-serverless:{region}:{account}:/applications/{app_id}"


def _started(run: JobRun) -> dict[str, Any]:
    return {"applicationId": run.app_id, "jobRunId": run.id, "arn": run.arn}


def needs_start(app: Application, work: str) -> bool:
    """Whether new ``work`` (job runs, sessions) must start the application first: True when
    it is CREATED or STOPPED with auto-start on; a ValidationException when it cannot take work."""
    if app.state in ("CREATED", "STOPPED"):
        if not app.config["autoStartConfiguration"].get("enabled", True):
            raise validation(
                f"Application {app.id} is {app.state} and auto-start is disabled; "
                f"start the application before submitting {work}"
            )
        return True
    if app.state not in ("STARTING", "STARTED"):
        raise validation(
            f"Application {app.id} is {app.state}; {work} can be submitted once it is CREATED"
        )
    return False


def _check_can_run(app: Application, data: Mapping[str, Any]) -> None:
    """Refuse a run the application cannot take: wrong state, or a driver for the other engine."""
    needs_start(app, "job runs")
    driver = data.get("jobDriver")
    if not driver:
        raise validation(
            "1 validation error detected: Value null at 'jobDriver' failed to satisfy "
            "constraint: Member must not be null"
        )
    wanted = _DRIVERS[app.config["type"].lower()]
    if wanted not in driver:
        raise validation(
            f"Job driver {', '.join(driver)} does not match application type "
            f"{app.config['type']}; use jobDriver.{wanted}"
        )


def _effective_disk(app: Application, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The diskEncryptionConfiguration in effect for a run (``job_run_disk`` has the rule)."""
    disk, _ = job_run_disk(
        data.get("configurationOverrides"), app.config.get("diskEncryptionConfiguration")
    )
    return copy.deepcopy(disk)


def disk_context(custom: Mapping[str, str] | None, app_id: str) -> dict[str, str]:
    """The encryption context of the service's KMS calls for disks: the custom pairs, and the
    ``applicationId`` the service sets itself (a custom pair cannot stand in for it)."""
    return {**(custom or {}), "applicationId": app_id}


def session_disk(
    keys: KeyService,
    identity: Identity,
    region: str,
    app: Mapping[str, Any],
    own: DiskEncryption | None,
) -> tuple[str, dict[str, str]] | None:
    """The key and context the service uses for a session's disks (StartSession, Livy
    ``POST /sessions``): the session's own (``own``, from its Spark conf), else the
    application's, else None; the caller's key check passed first."""
    if own is not None:
        key_arn, custom = own.key_arn, dict(own.context)
    else:
        app_disk = app.get("diskEncryptionConfiguration") or {}
        if not app_disk.get("encryptionKeyArn"):
            return None
        key_arn = app_disk["encryptionKeyArn"]
        custom = dict(app_disk.get("encryptionContext") or {})
    context = disk_context(custom, app["applicationId"])
    check_submission_key(keys, identity, region, key_arn, context)
    return key_arn, context


def check_submission_key(
    keys: KeyService, identity: Identity, region: str, key_arn: str, context: Mapping[str, str]
) -> None:
    """The caller's key check when a job run or session is submitted (StartJobRun, StartSession,
    Livy ``POST /sessions``): a key the caller cannot use through the service rejects the request
    with a ``ValidationException`` carrying the KMS cause, before anything is stored."""
    try:
        keys.check_caller_key_access(identity, region, key_arn, context)
    except AwsError as err:
        raise validation(key_failure(key_arn, err)) from None

"""Job runs with a job-level key: submit, watch, list, cancel.

A job's ``configurationOverrides.diskEncryptionConfiguration`` takes precedence over the
application's key for that one run (an empty one removes it: the AWS owned key); the view says
which key was in effect and where it came from.
"""

from __future__ import annotations

import argparse
import shlex
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emr_cmk_notebook.apps import ApplicationView, get_application
from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import ServiceFault, UserError
from emr_cmk_notebook.core.job_disks import job_run_disk
from emr_cmk_notebook.core.resource_usage import usage_rows, utilization
from emr_cmk_notebook.render import table_html

Progress = Callable[[str], None]
FINAL_STATES = frozenset({"SUCCESS", "FAILED", "CANCELLED"})


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class JobView:
    """A job run, with the key that protected its disks and where that key came from."""

    id: str
    application_id: str
    name: str
    state: str
    state_details: str
    key_arn: str | None
    # "job override" (also when the run's empty override removed the application's key) |
    # "application default" | "AWS owned key"
    key_origin: str
    context: dict[str, str] = field(default_factory=dict)
    entry_point: str = ""
    # What GetJobRun says the run used (``{"total": ..., "billed": ...}``); None until it ends.
    utilization: dict[str, dict[str, float]] | None = None

    @classmethod
    def from_api(cls, run: dict[str, Any], app_disk: dict[str, Any] | None) -> JobView:
        found, from_job = job_run_disk(run.get("configurationOverrides"), app_disk)
        disk = found or {}
        if from_job:
            origin = "job override"
        elif found:
            origin = "application default"
        else:
            origin = "AWS owned key"
        driver = (run.get("jobDriver") or {}).get("sparkSubmit") or {}
        return cls(
            id=run["jobRunId"],
            application_id=run["applicationId"],
            name=run.get("name", ""),
            state=run["state"],
            state_details=run.get("stateDetails", ""),
            key_arn=disk.get("encryptionKeyArn"),
            key_origin=origin,
            context=dict(disk.get("encryptionContext") or {}),
            entry_point=driver.get("entryPoint", ""),
            utilization=utilization(run),
        )

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def rows(self) -> list[tuple[str, str]]:
        pairs = ", ".join(f"{k}={v}" for k, v in self.context.items()) or "none"
        rows = [
            ("job run", f"{self.name or '(unnamed)'} ({self.id})"),
            ("application", self.application_id),
            ("state", self.state),
            ("disk key", f"{self.key_arn or 'AWS owned key'} ({self.key_origin})"),
            ("encryption context", pairs),
        ]
        if self.state_details:
            rows.append(("details", self.state_details))
        return rows + usage_rows(self.utilization)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "application_id": self.application_id,
            "name": self.name,
            "state": self.state,
            "state_details": self.state_details,
            "key_arn": self.key_arn,
            "key_origin": self.key_origin,
            "context": self.context,
            "entry_point": self.entry_point,
            "utilization": self.utilization,
        }

    def __repr__(self) -> str:
        return "\n".join(f"{k:<19} {v}" for k, v in self.rows())

    def _repr_html_(self) -> str:
        return table_html(self.rows())


@dataclass(frozen=True)
class JobList:
    """Several job runs, newest first."""

    jobs: list[JobView]

    def to_frame(self) -> Any:
        import pandas as pd

        columns = list(JobView.__dataclass_fields__)
        return pd.DataFrame([j.to_dict() for j in self.jobs], columns=columns)

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": [j.to_dict() for j in self.jobs]}

    def __repr__(self) -> str:
        return "\n".join(f"{j.id}  {j.state:<9} {j.key_origin:<19} {j.name}" for j in self.jobs)

    def _repr_html_(self) -> str:
        return self.to_frame()._repr_html_()


def _app_disk(app: ApplicationView) -> dict[str, Any] | None:
    return app.encryption.to_api() if app.encryption else None


def status(target: AwsTarget, application_id: str, job_run_id: str) -> JobView:
    """GetJobRun, as a JobView (the application by id or name)."""
    return _status(target, get_application(target, application_id), job_run_id)


def _status(target: AwsTarget, app: ApplicationView, job_run_id: str) -> JobView:
    run = target.client("emr-serverless").get_job_run(applicationId=app.id, jobRunId=job_run_id)
    return JobView.from_api(run["jobRun"], _app_disk(app))


def list_jobs(target: AwsTarget, application_id: str, limit: int = 50) -> JobList:
    """The application's most recent job runs (the application by id or name)."""
    app = get_application(target, application_id)
    emr = target.client("emr-serverless")
    runs = emr.list_job_runs(applicationId=app.id, maxResults=limit)["jobRuns"]
    views = [
        JobView.from_api(
            emr.get_job_run(applicationId=app.id, jobRunId=r["id"])["jobRun"], _app_disk(app)
        )
        for r in runs
    ]
    return JobList(views)


def cancel(target: AwsTarget, application_id: str, job_run_id: str) -> JobView:
    """CancelJobRun; returns the run as it stands after the request."""
    app = get_application(target, application_id)
    target.client("emr-serverless").cancel_job_run(applicationId=app.id, jobRunId=job_run_id)
    return _status(target, app, job_run_id)


def wait(
    target: AwsTarget,
    application_id: str,
    job_run_id: str,
    *,
    timeout: float = 3600.0,
    progress: Progress = _quiet,
) -> JobView:
    """Poll until the run finishes; a FAILED run raises with its stateDetails as the message."""
    from emr_cmk_notebook.core.polling import Backoff, poll

    application_id = get_application(target, application_id).id

    def timed_out(view: JobView) -> BaseException:
        return ServiceFault(f"job run {job_run_id} still {view.state} after {timeout:.0f} s")

    view = poll(
        lambda: status(target, application_id, job_run_id),
        until=lambda v: v.finished,
        backoff=Backoff(first=0.1, most=5.0),
        timeout=timeout,
        progress=lambda v: progress(v.state),
        timed_out=timed_out,
    )
    if view.state == "FAILED":
        raise JobFailed(view)
    return view


class JobFailed(ServiceFault):
    """A job run ended FAILED; the message is its stateDetails."""

    def __init__(self, view: JobView):
        self.view = view
        super().__init__(
            f"job run {view.id} FAILED: {view.state_details or 'no details given'}",
            code="JobRunFailed",
        )


def submit(
    target: AwsTarget,
    application_id: str,
    role_arn: str,
    entry_point: str,
    *,
    args: Sequence[str] = (),
    spark_params: str | None = None,
    encryption: DiskEncryption | None = None,
    name: str | None = None,
    check: bool = True,
) -> JobView:
    """StartJobRun with an optional job-level key; the key is resolved and checked first."""
    if not role_arn:
        raise UserError("no execution role given", hint="pass --role or set a default role")
    if not entry_point:
        raise UserError("no entry point given", hint="pass --entry-point PATH_OR_S3_URI")
    app = get_application(target, application_id)
    overrides: dict[str, Any] = {}
    if encryption is not None:
        from emr_cmk_notebook.sessions.gate import pass_gate

        resolved = pass_gate(
            target, encryption, app.id, role_arn, transport="job", skip_check=not check
        )
        overrides["diskEncryptionConfiguration"] = resolved.to_api()
    driver: dict[str, Any] = {"entryPoint": entry_point}
    if args:
        driver["entryPointArguments"] = list(args)
    if spark_params:
        driver["sparkSubmitParameters"] = spark_params
    params: dict[str, Any] = {
        "applicationId": app.id,
        "executionRoleArn": role_arn,
        "clientToken": str(uuid.uuid4()),
        "jobDriver": {"sparkSubmit": driver},
        "configurationOverrides": overrides,
    }
    if name:
        params["name"] = name
    emr = target.client("emr-serverless")
    started = emr.start_job_run(**params)
    return _status(target, app, started["jobRunId"])


def submit_from_options(
    target: AwsTarget, application_id: str, role_arn: str, options: argparse.Namespace
) -> JobView:
    """``submit`` with what ``emr-cmk job submit`` and ``%emr_job submit`` parsed: the entry
    point, its arguments as one shell-quoted string, Spark parameters, key and K=V context, name
    and ``skip_check``."""
    return submit(
        target,
        application_id,
        role_arn,
        options.entry_point,
        args=shlex.split(options.args),
        spark_params=options.spark_params,
        encryption=DiskEncryption.from_options(options.key, options.context),
        name=options.name,
        check=not options.skip_check,
    )


def dashboard_url(target: AwsTarget, application_id: str, job_run_id: str) -> str:
    """The Spark UI / logs dashboard URL for a run (short-lived, as AWS issues it)."""
    emr = target.client("emr-serverless")
    answer = emr.get_dashboard_for_job_run(
        applicationId=get_application(target, application_id).id,
        jobRunId=job_run_id,
    )
    return answer.get("url", "")

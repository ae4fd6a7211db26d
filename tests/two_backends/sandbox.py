"""The account the two-backend tests run in: the local backend (default) or AWS (``--aws``).

A ``Sandbox`` says where calls go (``target``, region, account), which execution role and S3
prefix to use, and creates throwaway resources, all tagged ``emr-cmk-test=<run id>``. Each
creation pushes its own undo; ``tear_down`` runs them newest first, keeps going past failures and
returns what it could not delete, with the command that deletes it by hand.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from emr_cmk_notebook import apps
from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.readiness.fixes import principal_key_statements, service_statement
from emr_cmk_notebook.readiness.gather import ROLE_ACTIONS

TAG = "emr-cmk-test"
ROLE_VARIABLE = "EMR_CMK_TEST_ROLE_ARN"
S3_VARIABLE = "EMR_CMK_TEST_S3_PREFIX"
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
WAIT_VARIABLE = "EMR_CMK_TEST_CLOUDTRAIL_WAIT_MINUTES"
DEFAULT_CLOUDTRAIL_WAIT_MINUTES = 15
RUN_ON_AWS = (
    f"runs against AWS with `pytest --aws` and {ROLE_VARIABLE}, {S3_VARIABLE} and AWS_REGION set; "
    "see README 'Testing against AWS'"
)
# The shortest deletion window KMS allows; a key pending deletion costs nothing.
KEY_DELETION_DAYS = 7


class SettingsMissing(ValueError):
    """``--aws`` was given without what it needs; the message is one line naming it."""


@dataclass(frozen=True)
class AwsSettings:
    """What ``--aws`` reads from the environment (credentials come from the usual chain)."""

    region: str
    role_arn: str
    s3_prefix: str
    cloudtrail_wait_s: float

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> AwsSettings:
        """The settings, or ``SettingsMissing`` naming every variable to set or fix."""
        from emr_cmk_notebook.core.errors import UserError
        from emr_cmk_notebook.sessions.conf import check_role

        region = next((environ[name] for name in REGION_VARIABLES if environ.get(name)), "")
        role = environ.get(ROLE_VARIABLE, "").strip()
        prefix = environ.get(S3_VARIABLE, "").strip()
        given = {ROLE_VARIABLE: role, S3_VARIABLE: prefix}
        missing = [name for name, value in given.items() if not value]
        if not region:
            missing.append("AWS_REGION (or AWS_DEFAULT_REGION)")
        if missing:
            raise SettingsMissing(f"--aws needs {', '.join(missing)} set; {RUN_ON_AWS}")
        try:
            check_role(role)
        except UserError as exc:
            raise SettingsMissing(f"{ROLE_VARIABLE}: {exc}") from None
        if not prefix.startswith("s3://") or not prefix[len("s3://") :].split("/")[0]:
            raise SettingsMissing(
                f"{S3_VARIABLE} {prefix!r} is not an S3 URI like s3://BUCKET/PREFIX/"
            )
        endpoints = sorted(name for name in environ if name.startswith("AWS_ENDPOINT_URL"))
        if endpoints:
            raise SettingsMissing(
                f"--aws talks to AWS itself but {', '.join(endpoints)} is set (to the local "
                "backend?); unset it"
            )
        wait = environ.get(WAIT_VARIABLE, str(DEFAULT_CLOUDTRAIL_WAIT_MINUTES))
        try:
            minutes = float(wait)
        except ValueError:
            minutes = -1.0
        if minutes < 0:
            raise SettingsMissing(f"{WAIT_VARIABLE} {wait!r} is not a number of minutes")
        return cls(region, role, prefix.rstrip("/") + "/", minutes * 60)


@dataclass
class Sandbox:
    """Where the tests run, and the throwaway resources they made there."""

    name: str  # "local" or "aws"
    target: AwsTarget
    account: str
    role_arn: str
    s3_prefix: str  # s3://BUCKET/PREFIX/
    cloudtrail_wait_s: float  # how long CloudTrail may take to show a call
    patience_s: float  # how long EMR Serverless work may take
    run_id: str = field(
        default_factory=lambda: f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
    )
    started_at: float = field(default_factory=time.time)
    _undo: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    @classmethod
    def on_aws(cls, settings: AwsSettings) -> Sandbox:
        """A sandbox in the AWS account the usual credentials belong to."""
        target = AwsTarget(region=settings.region)
        account = target.client("sts").get_caller_identity()["Account"]
        return cls(
            "aws", target, account, settings.role_arn, settings.s3_prefix,
            cloudtrail_wait_s=settings.cloudtrail_wait_s, patience_s=1200.0,
        )  # fmt: skip

    @classmethod
    def local(cls, backend: Any, role_arn: str) -> Sandbox:
        """A sandbox in the local backend's analytics account, with a bucket of its own."""
        from emr_cmk_notebook.local import ANALYTICS_ACCOUNT

        box = cls(
            "local", AwsTarget(endpoint_url=backend.endpoint, region=backend.region),
            ANALYTICS_ACCOUNT, role_arn, "", cloudtrail_wait_s=20.0, patience_s=300.0,
        )  # fmt: skip
        bucket = f"{TAG}-{box.run_id}"
        s3 = box.client("s3")
        s3.create_bucket(Bucket=bucket)
        box.on_teardown(f"S3 bucket {bucket}", lambda: s3.delete_bucket(Bucket=bucket))
        box.s3_prefix = f"s3://{bucket}/{TAG}/"
        return box

    @property
    def region(self) -> str:
        return self.target.resolved_region()

    @property
    def tags(self) -> dict[str, str]:
        """The tag every throwaway resource carries."""
        return {TAG: self.run_id}

    def client(self, service: str) -> Any:
        return self.target.client(service)

    # --- throwaway resources -------------------------------------------------------------------

    def on_teardown(self, what: str, undo: Callable[[], object]) -> None:
        """Run ``undo`` at teardown; if it fails, ``what`` is reported as left behind."""
        self._undo.append((what, undo))

    def create_application(self, release: str = "emr-7.13.0") -> apps.ApplicationView:
        """A tagged application with the Livy endpoint; stopped and deleted at teardown."""
        view = apps.create_application(self.target, f"{TAG}-{self.run_id}", release=release)
        self.on_teardown(
            f"EMR Serverless application {view.id} (aws emr-serverless stop-application, then "
            f"delete-application --application-id {view.id} --region {self.region})",
            lambda: self._delete_application(view.id),
        )
        self.client("emr-serverless").tag_resource(resourceArn=view.arn, tags=self.tags)
        return view

    def _delete_application(self, application_id: str) -> None:
        emr = self.client("emr-serverless")
        view = apps.get_application(self.target, application_id)
        if view.state == "TERMINATED":
            return
        settled = {"CREATED", "STARTED", "STOPPED"}
        if view.state not in settled:
            view = apps.wait_for_state(
                self.target, application_id, settled, timeout=self.patience_s
            )
        if view.state == "STARTED":
            emr.stop_application(applicationId=application_id)
            apps.wait_for_state(self.target, application_id, {"STOPPED"}, timeout=self.patience_s)
        emr.delete_application(applicationId=application_id)

    def create_disk_key(self, application: apps.ApplicationView) -> str:
        """A tagged symmetric key whose policy is the one AWS documents for EMR Serverless disks
        of ``application``, plus the execution role as a key user; scheduled for deletion at
        teardown. Returns its ARN."""
        partition = self.role_arn.split(":")[1]
        root = {
            "Sid": "EnableIamPolicies",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{self.account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
        statements = [
            root,
            service_statement(application.arn, self.account, application.id),
            *principal_key_statements(self.role_arn, ROLE_ACTIONS, None),
        ]
        kms = self.client("kms")
        key = kms.create_key(
            Description=f"emr-cmk-notebook test run {self.run_id}; safe to delete",
            KeySpec="SYMMETRIC_DEFAULT",
            KeyUsage="ENCRYPT_DECRYPT",
            Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            Tags=[{"TagKey": k, "TagValue": v} for k, v in self.tags.items()],
        )["KeyMetadata"]
        arn = key["Arn"]
        self.on_teardown(
            f"KMS key {arn} (aws kms schedule-key-deletion --key-id {arn} "
            f"--pending-window-in-days {KEY_DELETION_DAYS})",
            lambda: kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=KEY_DELETION_DAYS),
        )
        return arn

    def put_object(self, name: str, body: bytes) -> str:
        """An object under the sandbox's S3 prefix, removed at teardown; its ``s3://`` URI."""
        bucket, _, prefix = self.s3_prefix[len("s3://") :].partition("/")
        key = f"{prefix}{self.run_id}/{name}"
        s3 = self.client("s3")
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        uri = f"s3://{bucket}/{key}"
        self.on_teardown(
            f"S3 object {uri} (aws s3 rm {uri})", lambda: s3.delete_object(Bucket=bucket, Key=key)
        )
        return uri

    def tear_down(self) -> list[str]:
        """Undo everything, newest first, past failures; what could not be deleted, and why."""
        left = []
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                left.append(f"{what}: {code or type(exc).__name__}: {exc}")
        return left

    # --- waiting on CloudTrail -----------------------------------------------------------------

    def await_cloudtrail(self, probe: Callable[[], Any], what: str) -> Any:
        """``probe()`` once it answers something true; event history lags by minutes on AWS, so
        there a call still missing after the bound skips the test, while locally it fails."""
        deadline = time.monotonic() + self.cloudtrail_wait_s
        poll = 30.0 if self.name == "aws" else 0.5  # LookupEvents allows 2 calls a second
        while True:
            found = probe()
            if found:
                return found
            if time.monotonic() > deadline:
                break
            time.sleep(poll)
        minutes = self.cloudtrail_wait_s / 60
        if self.name == "aws":
            pytest.skip(
                f"CloudTrail event history did not show {what} within {minutes:g} min; "
                f"raise {WAIT_VARIABLE} to wait longer"
            )
        pytest.fail(f"the local backend's CloudTrail did not show {what} within {minutes:g} min")

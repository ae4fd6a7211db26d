"""The local trail: one multi-region trail per account, delivering log files to an S3 bucket.

It answers ``DescribeTrails``, ``GetTrailStatus`` and ``GetEventSelectors`` in the shapes of the
CloudTrail API, and copies each delivered log file to the account's bucket
``emr-cmk-cloudtrail-ACCOUNT`` under ``AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/``, where a
trail without a key prefix puts it. Two settings make it incomplete on purpose, so that tools can
be tested for noticing: ``trail_kms_events`` = ``excluded`` (the trail's event selector excludes
``kms.amazonaws.com``, and KMS records stop reaching its files) and ``trail_logging`` = false
(logging stopped: nothing is delivered). Event history (``LookupEvents``) is not affected by
either, as on AWS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.wire import ApiRequest, ApiResponse, json11_error, json11_ok

TRAIL_NAME = "emr-cmk-trail"
OPERATIONS = frozenset({"DescribeTrails", "GetTrailStatus", "GetEventSelectors"})
KMS_EVENTS = ("logged", "excluded")
KMS_EVENT_SOURCE = "kms.amazonaws.com"
PARTITION = "aws"


def bucket_name(account: str) -> str:
    """The S3 bucket an account's trail delivers to."""
    return f"emr-cmk-cloudtrail-{account}"


def trail_arn(account: str, home_region: str) -> str:
    """The ARN of an account's trail."""
    return f"arn:{PARTITION}:cloudtrail:{home_region}:{account}:trail/{TRAIL_NAME}"


class Trails:
    """Every account's trail: its settings, its status and its S3 delivery."""

    def __init__(self, home_region: str, clock: Callable[[], float] = time.time):
        self.home_region = home_region
        self._clock = clock
        self._lock = threading.Lock()
        self.kms_events = "logged"
        self.logging = True
        self._started = clock()
        self._stopped: float | None = None
        self._delivered: dict[str, float] = {}

    # --- settings --------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """The trail settings as the admin API shows them."""
        return {"trail_kms_events": self.kms_events, "trail_logging": self.logging}

    def check_settings(self, changes: dict[str, Any]) -> None:
        """Refuse, in one line, a trail setting outside its values (before anything applies)."""
        value = changes.get("trail_kms_events")
        if value is not None and value not in KMS_EVENTS:
            choices = ", ".join(KMS_EVENTS)
            raise ValueError(f"trail_kms_events must be one of {choices}, not {value!r}")
        logging = changes.get("trail_logging")
        if logging is not None and not isinstance(logging, bool):
            raise ValueError(f"trail_logging must be true or false, not {logging!r}")

    def update_settings(self, changes: dict[str, Any]) -> None:
        """Apply ``trail_kms_events`` and ``trail_logging`` when given."""
        self.check_settings(changes)
        with self._lock:
            if changes.get("trail_kms_events") is not None:
                self.kms_events = changes["trail_kms_events"]
            logging = changes.get("trail_logging")
            if logging is not None and logging != self.logging:
                self.logging = logging
                if logging:
                    self._started, self._stopped = self._clock(), None
                else:
                    self._stopped = self._clock()

    def reset(self) -> None:
        """Back to a trail that logs everything, with nothing delivered yet."""
        with self._lock:
            self.kms_events, self.logging = "logged", True
            self._started, self._stopped = self._clock(), None
            self._delivered.clear()

    # --- delivery --------------------------------------------------------------------------------

    def logs(self, record: dict[str, Any]) -> bool:
        """Whether the trail writes ``record`` to its log files."""
        if not self.logging:
            return False
        return self.kms_events == "logged" or record.get("eventSource") != KMS_EVENT_SOURCE

    def deliver(self, account: str, key: str, path: Path) -> None:
        """Copy a delivered log file to the account's bucket under ``key``."""
        from moto.s3.models import s3_backends

        s3 = s3_backends[account][PARTITION]
        self._ensure_bucket(account)
        s3.put_object(bucket_name(account), key, path.read_bytes())
        with self._lock:
            self._delivered[account] = self._clock()

    def _ensure_bucket(self, account: str) -> None:
        from moto.s3.models import s3_backends

        s3 = s3_backends[account][PARTITION]
        if bucket_name(account) not in s3.buckets:
            s3.create_bucket(bucket_name(account), self.home_region)

    # --- API -------------------------------------------------------------------------------------

    def describe(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        """``DescribeTrails``: the account's multi-region trail, seen from any region."""
        names = body.get("trailNameList") or []
        if not isinstance(names, list):
            raise AwsError("InvalidParameterException", "trailNameList must be a list")
        shadows = body.get("includeShadowTrails", True)
        trail = self._trail(account)
        if names and not any(self._names_trail(account, name) for name in names):
            return {"trailList": []}
        if region != self.home_region and shadows is False:
            return {"trailList": []}
        return {"trailList": [trail]}

    def status(self, account: str, body: dict[str, Any]) -> dict[str, Any]:
        """``GetTrailStatus`` for the account's trail."""
        self._find(account, body.get("Name"))
        with self._lock:
            answer: dict[str, Any] = {
                "IsLogging": self.logging,
                "StartLoggingTime": self._started,
                "TimeLoggingStarted": _iso(self._started),
            }
            if self._stopped is not None:
                answer["StopLoggingTime"] = self._stopped
                answer["TimeLoggingStopped"] = _iso(self._stopped)
            delivered = self._delivered.get(account)
        if delivered is not None:
            answer["LatestDeliveryTime"] = delivered
            answer["LatestDeliveryAttemptTime"] = _iso(delivered)
            answer["LatestDeliveryAttemptSucceeded"] = _iso(delivered)
        return answer

    def event_selectors(self, account: str, body: dict[str, Any]) -> dict[str, Any]:
        """``GetEventSelectors``: all management events, minus KMS when so set."""
        self._find(account, body.get("TrailName"))
        excluded = [KMS_EVENT_SOURCE] if self.kms_events == "excluded" else []
        return {
            "TrailARN": trail_arn(account, self.home_region),
            "EventSelectors": [
                {
                    "ReadWriteType": "All",
                    "IncludeManagementEvents": True,
                    "DataResources": [],
                    "ExcludeManagementEventSources": excluded,
                }
            ],
        }

    def _trail(self, account: str) -> dict[str, Any]:
        self._ensure_bucket(account)
        return {
            "Name": TRAIL_NAME,
            "S3BucketName": bucket_name(account),
            "IncludeGlobalServiceEvents": True,
            "IsMultiRegionTrail": True,
            "HomeRegion": self.home_region,
            "TrailARN": trail_arn(account, self.home_region),
            "LogFileValidationEnabled": False,
            "HasCustomEventSelectors": self.kms_events == "excluded",
            "HasInsightSelectors": False,
            "IsOrganizationTrail": False,
        }

    def _names_trail(self, account: str, name: Any) -> bool:
        return name in (TRAIL_NAME, trail_arn(account, self.home_region))

    def _find(self, account: str, name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise AwsError("InvalidTrailNameException", "Trail name or ARN can not be empty.")
        if name.startswith("arn:") and not name.startswith(f"arn:{PARTITION}:cloudtrail:"):
            raise AwsError("CloudTrailARNInvalidException", f"Invalid trail ARN: {name}")
        if not self._names_trail(account, name):
            raise AwsError(
                "TrailNotFoundException",
                f"Unknown trail: {name} for the user: {account}",
            )


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def handle(trails: Trails, request: ApiRequest) -> ApiResponse:
    """Serve ``DescribeTrails``, ``GetTrailStatus`` or ``GetEventSelectors``."""
    account = request.identity.account_id
    try:
        body = request.json()
        if request.operation == "DescribeTrails":
            answer = trails.describe(account, request.region, body)
        elif request.operation == "GetTrailStatus":
            answer = trails.status(account, body)
        else:
            answer = trails.event_selectors(account, body)
    except AwsError as err:
        return json11_error(err)
    return json11_ok(answer)

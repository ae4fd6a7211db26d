"""What a key-usage result may be missing, and why, said in one line before the table.

Trail logs (the ``files`` and ``athena`` sources) miss what no trail writes: a region no trail
covers, a trail whose event selectors leave out KMS (``ExcludeManagementEventSources``, advanced
selectors on ``eventSource`` or ``readOnly``, no management events, write-only), a trail that
stopped logging. The trails are read with ``DescribeTrails``, ``GetEventSelectors`` and
``GetTrailStatus``. Event history (``lookup``) keeps every management event whatever the trails
say, but only for 90 days, and shows a call minutes after it was made.

A check that cannot be made (no permission to describe trails) is itself a reason: the result
may be complete, but nothing vouches for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from emr_cmk_notebook.usage.harvest import HISTORY_SECONDS, SETTLE_SECONDS

KMS_EVENT_SOURCE = "kms.amazonaws.com"


@dataclass(frozen=True)
class Completeness:
    """The reasons a result may be incomplete; none means nothing known is missing."""

    reasons: tuple[str, ...] = ()

    def line(self) -> str | None:
        """One line for the user, or None when there is nothing to say."""
        if not self.reasons:
            return None
        return "may be incomplete: " + "; ".join(self.reasons)


def history_gaps(start: datetime, end: datetime, now: datetime) -> Completeness:
    """What event history cannot show for a window: before its 90 days, and the last minutes."""
    reasons = []
    oldest = now - timedelta(seconds=HISTORY_SECONDS)
    if start < oldest:
        reasons.append(
            f"event history keeps {HISTORY_SECONDS // 86400} days, so calls before"
            f" {oldest:%Y-%m-%dT%H:%M:%SZ} are only in the trail's S3 logs (source athena or files)"
        )
    if end > now - timedelta(seconds=SETTLE_SECONDS):
        reasons.append(
            f"event history shows a call up to about {SETTLE_SECONDS // 60} minutes after it was"
            " made, so the newest calls may be missing"
        )
    return Completeness(tuple(reasons))


def trail_gaps(
    client_for: Callable[[str], Any], regions: Iterable[str], bucket: str | None = None
) -> Completeness:
    """What the trails (those delivering to ``bucket``, when given) leave out in ``regions``.

    ``client_for(region)`` returns a CloudTrail client in that region.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    reasons: list[str] = []
    try:
        trails: dict[str, dict[str, Any]] = {}
        for region in regions:
            found = [
                trail
                for trail in client_for(region).describe_trails(includeShadowTrails=True)[
                    "trailList"
                ]
                if bucket is None or trail.get("S3BucketName") == bucket
            ]
            if not found:
                where = f" to s3://{bucket}" if bucket else ""
                reasons.append(f"no trail logs {region}{where}")
            for trail in found:
                trails.setdefault(trail["TrailARN"], trail)
        for arn, trail in trails.items():
            client = client_for(trail.get("HomeRegion") or next(iter(regions)))
            name = trail.get("Name", arn)
            selectors = client.get_event_selectors(TrailName=arn)
            reasons += [f"trail {name} {gap}" for gap in selector_gaps(selectors)]
            status = client.get_trail_status(Name=arn)
            if not status.get("IsLogging", True):
                stopped = status.get("StopLoggingTime")
                since = f" since {stopped:%Y-%m-%dT%H:%M:%SZ}" if stopped else ""
                reasons.append(f"trail {name} stopped logging{since}")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "an error")
        reasons.append(f"the trails could not be checked ({code})")
    except BotoCoreError as exc:
        reasons.append(f"the trails could not be checked ({exc})")
    return Completeness(tuple(reasons))


def selector_gaps(answer: dict[str, Any]) -> list[str]:
    """Why a trail's event selectors would leave out the KMS calls EMR Serverless makes."""
    if answer.get("AdvancedEventSelectors"):
        return _advanced_gaps(answer["AdvancedEventSelectors"])
    selectors = answer.get("EventSelectors") or []
    management = [s for s in selectors if s.get("IncludeManagementEvents", True)]
    if not management:
        return ["logs no management events (KMS calls are management events)"]
    if all(KMS_EVENT_SOURCE in s.get("ExcludeManagementEventSources", []) for s in management):
        return ["excludes KMS events (ExcludeManagementEventSources kms.amazonaws.com)"]
    if all(s.get("ReadWriteType", "All") == "WriteOnly" for s in management):
        return ["logs only write events, and GenerateDataKey and Decrypt are read-only"]
    return []


def _advanced_gaps(selectors: list[dict[str, Any]]) -> list[str]:
    management = [s for s in selectors if _equals(s, "eventCategory") == ["Management"]]
    if not management:
        return ["logs no management events (KMS calls are management events)"]
    if all(_leaves_out_kms(s) for s in management):
        return ["excludes KMS events (an advanced event selector on eventSource)"]
    if all(_equals(s, "readOnly") == ["false"] for s in management):
        return ["logs only write events, and GenerateDataKey and Decrypt are read-only"]
    return []


def _field(selector: dict[str, Any], name: str) -> dict[str, Any]:
    for field in selector.get("FieldSelectors", []):
        if field.get("Field") == name:
            return field
    return {}


def _equals(selector: dict[str, Any], name: str) -> list[str] | None:
    return _field(selector, name).get("Equals")


def _leaves_out_kms(selector: dict[str, Any]) -> bool:
    field = _field(selector, "eventSource")
    if KMS_EVENT_SOURCE in field.get("NotEquals", []):
        return True
    equals = field.get("Equals")
    return equals is not None and KMS_EVENT_SOURCE not in equals

"""CloudTrail formats: KMS call records, delivered log files, LookupEvents requests and answers."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
import os
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.identity import Identity

EVENT_VERSION = "1.11"
KMS_EVENT_SOURCE = "kms.amazonaws.com"
KMS_KEY_RESOURCE_TYPE = "AWS::KMS::Key"
AWS_INTERNAL = "AWS Internal"
MAX_RESULTS = 50
MAX_ATTRIBUTE_VALUE = 2000
_RANDOM_ALPHABET = string.ascii_letters + string.digits

# KMS logs every cryptographic operation as read-only; key management calls are writes.
_READ_ONLY_KMS_CALLS = frozenset(
    {
        "Decrypt",
        "DeriveSharedSecret",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GenerateRandom",
        "ReEncrypt",
        "Sign",
        "Verify",
        "VerifyMac",
    }
)
_READ_ONLY_PREFIXES = ("Describe", "Get", "List")

# Key material never reaches a log, whatever the caller passes in.
_SECRET_FIELDS = frozenset({"plaintext", "ciphertextblob", "ciphertextforrecipient"})


def kms_read_only(event_name: str) -> bool:
    """Whether CloudTrail marks this KMS operation ``readOnly``."""
    return event_name in _READ_ONLY_KMS_CALLS or event_name.startswith(_READ_ONLY_PREFIXES)


def iso_time(epoch: float) -> str:
    """``eventTime`` as CloudTrail writes it: UTC, whole seconds, ``Z``."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> float:
    """Epoch seconds from a number or an ISO 8601 string; ValueError for anything else."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            seconds = parsed.timestamp()
    else:
        raise ValueError(f"{value!r} is not a time")
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a time")
    return seconds


def key_account(key_arn: str | None) -> str | None:
    """The account that owns a KMS key ARN (``arn:aws:kms:REGION:ACCOUNT:key/ID``), if it parses."""
    if not key_arn:
        return None
    parts = key_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "kms" and parts[4].isdigit():
        return parts[4]
    return None


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if k.lower() not in _SECRET_FIELDS}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def build_kms_record(
    *,
    identity: Identity,
    region: str,
    event_name: str,
    key_arn: str | None,
    request_parameters: dict[str, Any],
    response_elements: dict[str, Any] | None,
    error_code: str | None,
    error_message: str | None,
    source_ip: str,
    user_agent: str,
    request_id: str,
    event_time: float,
    read_only: bool | None,
    recipient_account_id: str,
    shared_event_id: str | None = None,
    additional_event_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One KMS call as a CloudTrail record delivered to ``recipient_account_id``.

    ``shared_event_id`` links the copies of one cross-account call that each account receives;
    ``additional_event_data`` is what KMS adds beside the request (e.g. ``keyMaterialId``).
    """
    is_service = identity.type == "AWSService"
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity.cloudtrail_user_identity(),
        "eventTime": iso_time(event_time),
        "eventSource": KMS_EVENT_SOURCE,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": AWS_INTERNAL if is_service else source_ip,
        "userAgent": AWS_INTERNAL if is_service else user_agent,
    }
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = error_message or ""
    response = _without_secrets(response_elements) if response_elements else None
    record |= {
        "requestParameters": _without_secrets(request_parameters),
        "responseElements": response or None,
    }
    if additional_event_data:
        record["additionalEventData"] = dict(additional_event_data)
    record |= {
        "requestID": request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": kms_read_only(event_name) if read_only is None else read_only,
    }
    owner = key_account(key_arn)
    if key_arn:
        record["resources"] = [
            {
                "accountId": owner or identity.account_id,
                "type": KMS_KEY_RESOURCE_TYPE,
                "ARN": key_arn,
            }
        ]
    record |= {
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": recipient_account_id,
    }
    if shared_event_id:
        record["sharedEventID"] = shared_event_id
    record["eventCategory"] = "Management"
    return record


def username(record: dict[str, Any], service: str | None = None) -> str | None:
    """The event-history ``Username`` of a record.

    IAM users show their user name, role sessions their session name, the root user ``root``.
    For AWS services the record carries no name, so the service principal is used when known.
    """
    who = record.get("userIdentity") or {}
    kind = who.get("type")
    if kind == "IAMUser":
        return who.get("userName")
    if kind == "AssumedRole":
        arn = who.get("arn") or ""
        return arn.rsplit("/", 1)[-1] if "/" in arn else None
    if kind == "Root":
        return "root"
    if kind == "AWSService":
        return service or who.get("invokedBy")
    return who.get("userName")


def event_time(record: dict[str, Any]) -> float:
    """A record's ``eventTime`` as epoch seconds."""
    return parse_time(record["eventTime"])


def history_event(record: dict[str, Any], user: str | None) -> dict[str, Any]:
    """A record as one ``LookupEvents`` entry; ``CloudTrailEvent`` holds the full record."""
    entry: dict[str, Any] = {
        "EventId": record.get("eventID"),
        "EventName": record.get("eventName"),
        "ReadOnly": "true" if record.get("readOnly") else "false",
    }
    access_key = (record.get("userIdentity") or {}).get("accessKeyId")
    if access_key:
        entry["AccessKeyId"] = access_key
    entry |= {"EventTime": event_time(record), "EventSource": record.get("eventSource")}
    if user:
        entry["Username"] = user
    entry["Resources"] = [
        {"ResourceType": r.get("type"), "ResourceName": r.get("ARN")}
        for r in record.get("resources") or []
    ]
    entry["CloudTrailEvent"] = json.dumps(record)
    return entry


def _resource_field(record: dict[str, Any], field: str) -> set[str]:
    return {r[field] for r in record.get("resources") or [] if r.get(field)}


# What each lookup attribute is compared with: the values a record (and its Username) offers.
_ATTRIBUTES: dict[str, Callable[[dict[str, Any], str | None], set[str]]] = {
    "EventId": lambda rec, _user: {rec.get("eventID", "")},
    "EventName": lambda rec, _user: {rec.get("eventName", "")},
    "ReadOnly": lambda rec, _user: {"true" if rec.get("readOnly") else "false"},
    "Username": lambda _rec, user: {user} if user else set(),
    "ResourceType": lambda rec, _user: _resource_field(rec, "type"),
    "ResourceName": lambda rec, _user: _resource_field(rec, "ARN"),
    "EventSource": lambda rec, _user: {rec.get("eventSource", "")},
    "AccessKeyId": lambda rec, _user: {(rec.get("userIdentity") or {}).get("accessKeyId", "")},
}


def _bad(code: str, message: str) -> AwsError:
    return AwsError(code, message, 400)


@dataclass(frozen=True)
class LookupQuery:
    """A validated ``LookupEvents`` request; ``after`` is where the previous page stopped."""

    attribute: tuple[str, str] | None
    start: float | None
    end: float | None
    insight: bool
    max_results: int
    after: tuple[int, int] | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> LookupQuery:
        """Validate a request body the way CloudTrail does, with CloudTrail's error codes."""
        start = _time_bound(body, "StartTime")
        end = _time_bound(body, "EndTime")
        if start is not None and end is not None and start > end:
            raise _bad("InvalidTimeRangeException", "StartTime must not be later than EndTime.")
        category = body.get("EventCategory")
        if category not in (None, "insight"):
            raise _bad(
                "InvalidEventCategoryException",
                f"EventCategory {category!r} is not valid; the only value is 'insight'.",
            )
        query = cls(
            _lookup_attribute(body.get("LookupAttributes")),
            start,
            end,
            category == "insight",
            _max_results(body.get("MaxResults")),
            None,
        )
        if body.get("NextToken"):
            return replace(query, after=query._resume(body["NextToken"]))
        return query

    def matches(self, record: dict[str, Any], user: str | None) -> bool:
        """Whether a record has the asked-for attribute value (always, when none is asked)."""
        if self.attribute is None:
            return True
        key, wanted = self.attribute
        return wanted in _ATTRIBUTES[key](record, user)

    def next_token(self, last: tuple[int, int]) -> str:
        """A token that resumes after ``last`` (event time, arrival) for this same query."""
        raw = json.dumps({"t": last[0], "s": last[1], "q": self._digest()}).encode()
        return base64.urlsafe_b64encode(raw).decode()

    def _digest(self) -> str:
        canonical = json.dumps([self.attribute, self.start, self.end, self.insight])
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def _resume(self, token: Any) -> tuple[int, int]:
        try:
            data = json.loads(base64.urlsafe_b64decode(str(token).encode()))
            if data["q"] == self._digest():
                return (int(data["t"]), int(data["s"]))
        except (ValueError, TypeError, KeyError):
            pass
        raise _bad(
            "InvalidNextTokenException",
            "NextToken is not valid; pass the NextToken of the previous response "
            "with the same lookup attribute and time range.",
        )


def _lookup_attribute(value: Any) -> tuple[str, str] | None:
    if value is None or value == []:
        return None
    if not isinstance(value, list):
        raise _bad("InvalidLookupAttributesException", "LookupAttributes must be a list.")
    if len(value) > 1:
        raise _bad(
            "InvalidLookupAttributesException",
            f"LookupAttributes takes at most one attribute, got {len(value)}; "
            "make one call per attribute.",
        )
    item = value[0] if isinstance(value[0], dict) else {}
    key, wanted = item.get("AttributeKey"), item.get("AttributeValue")
    if key not in _ATTRIBUTES:
        raise _bad(
            "InvalidLookupAttributesException",
            f"AttributeKey {key!r} is not valid; use one of {', '.join(_ATTRIBUTES)}.",
        )
    if not isinstance(wanted, str) or not 1 <= len(wanted) <= MAX_ATTRIBUTE_VALUE:
        raise _bad(
            "InvalidLookupAttributesException",
            f"AttributeValue for {key} must be a string of 1 to {MAX_ATTRIBUTE_VALUE} characters.",
        )
    if key == "ReadOnly" and wanted not in ("true", "false"):
        raise _bad(
            "InvalidLookupAttributesException",
            f"AttributeValue for ReadOnly must be 'true' or 'false', not {wanted!r}.",
        )
    return key, wanted


def _time_bound(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise _bad(
            "InvalidTimeRangeException",
            f"{name} {value!r} is not a time; give epoch seconds or an ISO 8601 timestamp.",
        ) from None


def _max_results(value: Any) -> int:
    if value is None:
        return MAX_RESULTS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RESULTS:
        raise _bad(
            "InvalidMaxResultsException",
            f"MaxResults {value!r} is not valid; give a whole number from 1 to {MAX_RESULTS}.",
        )
    return value


def log_day(record: dict[str, Any]) -> str:
    """The ``YYYY/MM/DD`` folder a record is delivered under: its own event date."""
    return datetime.fromtimestamp(event_time(record), UTC).strftime("%Y/%m/%d")


def write_log_file(
    log_dir: Path, account: str, region: str, day: str, batch: list[dict[str, Any]]
) -> Path:
    """Write ``{"Records": batch}`` as a gzip log file where an S3 trail would put it.

    The file appears whole or not at all: it is written under a temporary name, then renamed.
    """
    folder = log_dir / "AWSLogs" / account / "CloudTrail" / region / day
    folder.mkdir(parents=True, exist_ok=True)
    # Named like a real delivery: the minute of the newest record it carries.
    newest = datetime.fromtimestamp(max(event_time(r) for r in batch), UTC)
    suffix = "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(16))
    path = folder / f"{account}_CloudTrail_{region}_{newest:%Y%m%dT%H%MZ}_{suffix}.json.gz"
    temp = folder / f".{path.name}.tmp"
    try:
        with gzip.open(temp, "wb") as out:
            out.write(json.dumps({"Records": batch}).encode())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path

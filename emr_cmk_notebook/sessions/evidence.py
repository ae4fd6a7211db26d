"""Evidence from CloudTrail that a session's worker disks really used the key it asked for.

EMR Serverless asks KMS for a data key (``GenerateDataKey``, identity type ``AWSService``) with the
application id and the session's custom pairs in the encryption context. ``verify_session`` looks
for that call, made after the session started, on the session's key and on the other keys the
session could have fallen back to (the application's key, any given), and answers:

- ``verified``: the call is there, on the expected key (event time and id shown);
- ``not yet visible``: no such call yet; event history lags by minutes, so retry later;
- ``contradicted``: the call for this application and context used another key (named);
- ``nothing to verify``: the session runs on the AWS owned key, whose use CloudTrail does not show.

The KMS call carries no session id: it is matched by application id, custom pairs and time.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.sessions.results import SessionInfo
from emr_cmk_notebook.usage.frame import iso_time
from emr_cmk_notebook.usage.harvest import SETTLE_SECONDS
from emr_cmk_notebook.usage.key_usage import KeyUsage, resolve_key_arn
from emr_cmk_notebook.usage.views import KernelSession, is_service_call

VERIFIED = "verified"
NOT_YET_VISIBLE = "not yet visible"
CONTRADICTED = "contradicted"
NOTHING_TO_VERIFY = "nothing to verify"
# How far back to look for a session whose start time is unknown (attached, not started here).
UNKNOWN_START_LOOKBACK = pd.Timedelta(days=1)
_COLOURS = {VERIFIED: "#1a7f37", NOT_YET_VISIBLE: "#9a6700", CONTRADICTED: "#cf222e"}


@dataclass
class SessionEvidence:
    """What CloudTrail says about the key a session's worker disks used."""

    status: str
    session_id: str
    application_id: str
    key_arn: str | None
    context: dict[str, str]
    message: str
    started: str | None = None
    checked_at: str | None = None
    event_time: str | None = None
    event_id: str | None = None
    used_key_arn: str | None = None
    retry_after: str | None = None
    keys_searched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        """True when CloudTrail shows the service's data key call on the expected key."""
        return self.status == VERIFIED

    def rows(self) -> list[tuple[str, str]]:
        """The evidence as (name, value) rows, in the order an auditor reads them."""
        pairs = ", ".join(f"{k}={v}" for k, v in self.context.items()) or "(none)"
        rows = [
            ("result", self.status),
            ("session", self.session_id),
            ("application", self.application_id),
            ("expected key", self.key_arn or "AWS owned key"),
            ("custom context", pairs),
            ("session started", self.started or "(unknown)"),
        ]
        if self.event_id:
            rows += [("event time", self.event_time or ""), ("event id", self.event_id)]
        if self.used_key_arn and self.used_key_arn != self.key_arn:
            rows.append(("key actually used", self.used_key_arn))
        if self.retry_after:
            rows.append(("retry after", self.retry_after))
        if self.keys_searched:
            rows.append(("keys searched", ", ".join(self.keys_searched)))
        rows.append(("checked at", self.checked_at or ""))
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The evidence as plain data."""
        return {
            "status": self.status,
            "session_id": self.session_id,
            "application_id": self.application_id,
            "key_arn": self.key_arn,
            "context": dict(self.context),
            "message": self.message,
            "started": self.started,
            "checked_at": self.checked_at,
            "event_time": self.event_time,
            "event_id": self.event_id,
            "used_key_arn": self.used_key_arn,
            "retry_after": self.retry_after,
            "keys_searched": list(self.keys_searched),
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        lines = [self.message, *(f"{k:<18} {v}" for k, v in self.rows()[1:])]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])

    def _repr_html_(self) -> str:
        from emr_cmk_notebook.render import table_html

        colour = _COLOURS.get(self.status, "#57606a")
        head = f"<p style='color:{colour}'><b>{html.escape(self.message)}</b></p>"
        notes = "".join(f"<p><i>{html.escape(note)}</i></p>" for note in self.notes)
        return head + table_html(self.rows(), "CMK evidence from CloudTrail") + notes


def verify_session(
    session: SessionInfo,
    target: AwsTarget | None = None,
    *,
    key: str | None = None,
    other_keys: Iterable[str] = (),
    now: Callable[[], pd.Timestamp] = lambda: pd.Timestamp.now(tz="UTC"),
) -> SessionEvidence:
    """Check CloudTrail for the service's GenerateDataKey on the session's key since it started.

    ``key`` is the key the session should use (default: the key it was started with). Besides
    it, the session's own key, the application's current key and ``other_keys`` are searched,
    so that a call made with another key is reported as a contradiction, naming that key.
    """
    target = target or AwsTarget()
    checked = now()
    context = {k: v for k, v in session.context.items() if k != "applicationId"}
    evidence = SessionEvidence(
        status=NOTHING_TO_VERIFY,
        session_id=str(session.id),
        application_id=session.application_id,
        key_arn=None,
        context=context,
        message="",
        checked_at=iso_time(checked.floor("s")),
    )
    expected = key or session.key_arn
    if not expected:
        evidence.message = (
            f"session {session.id}: nothing to verify; its worker disks use an AWS owned key, "
            "whose use does not appear in your CloudTrail"
        )
        return evidence
    evidence.key_arn = resolve_key_arn(expected, target)
    started_at = getattr(session, "started_at", None)
    if started_at is not None:
        started = pd.Timestamp(started_at, unit="s", tz="UTC").floor("s")
        evidence.started = iso_time(started)
    else:
        started = (checked - UNKNOWN_START_LOOKBACK).floor("s")
        evidence.notes.append(
            f"the session's start time is unknown here (it was not started from this kernel); "
            f"calls since {iso_time(started)} count"
        )
    candidates = _candidates(evidence.key_arn, session, other_keys, target)
    evidence.keys_searched = candidates
    found = {k: _service_calls(k, session, context, started, target) for k in candidates}
    _decide(evidence, found, started, checked)
    return evidence


def _candidates(
    expected: str, session: SessionInfo, other_keys: Iterable[str], target: AwsTarget
) -> list[str]:
    from emr_cmk_notebook import apps

    keys = [expected]
    application = apps.get_application(target, session.application_id)
    others = [session.key_arn, application.encryption.key if application.encryption else None]
    for other in [*others, *other_keys]:
        if other:
            arn = resolve_key_arn(other, target)
            if arn not in keys:
                keys.append(arn)
    return keys


def _service_calls(
    key_arn: str,
    session: SessionInfo,
    context: dict[str, str],
    started: pd.Timestamp,
    target: AwsTarget,
) -> pd.DataFrame:
    """The service's GenerateDataKey calls on ``key_arn`` for this application and context."""
    wanted = KernelSession(str(session.id), session.application_id, context, started=started)
    usage = KeyUsage.fetch(
        key_arn,
        start=started,
        application_id=session.application_id,
        session=wanted,
        target=target,
        cache=False,
    )
    frame = usage.to_frame()
    if frame.empty:
        return frame
    calls = frame[
        is_service_call(frame) & (frame["event_name"].astype(object) == "GenerateDataKey")
    ]
    return calls.sort_values(["event_time", "event_id"], kind="stable")


def _decide(
    evidence: SessionEvidence,
    found: dict[str, pd.DataFrame],
    started: pd.Timestamp,
    checked: pd.Timestamp,
) -> None:
    expected = evidence.key_arn or ""
    succeeded = {k: f[f["error_code"].isna()] for k, f in found.items()}
    mine = succeeded[expected]
    others = {k: f for k, f in succeeded.items() if k != expected and not f.empty}
    denied = found[expected][found[expected]["error_code"].notna()]
    if not denied.empty:
        first = denied.iloc[0]
        evidence.notes.append(
            f"the service's GenerateDataKey on the expected key was refused "
            f"({first['error_code']}) at {iso_time(first['event_time'])}, event {first['event_id']}"
        )
    if not mine.empty:
        first = mine.iloc[0]
        evidence.status = VERIFIED
        evidence.event_time = iso_time(first["event_time"])
        evidence.event_id = str(first["event_id"])
        evidence.used_key_arn = expected
        evidence.message = (
            f"verified: EMR Serverless made a data key with {expected} for session "
            f"{evidence.session_id} at {evidence.event_time} (event {evidence.event_id})"
        )
        for other, calls in others.items():
            evidence.notes.append(
                f"a call for the same application and context also used {other} at "
                f"{iso_time(calls.iloc[0]['event_time'])}: another session or job with the same "
                "context, or this one"
            )
        return
    if others:
        other, calls = min(others.items(), key=lambda item: item[1].iloc[0]["event_time"])
        first = calls.iloc[0]
        evidence.status = CONTRADICTED
        evidence.used_key_arn = other
        evidence.event_time = iso_time(first["event_time"])
        evidence.event_id = str(first["event_id"])
        evidence.message = (
            f"contradicted: the service's GenerateDataKey for application "
            f"{evidence.application_id} with this context used ANOTHER key, {other}, at "
            f"{evidence.event_time} (event {evidence.event_id}), not {expected}"
        )
        return
    lag = pd.Timedelta(seconds=SETTLE_SECONDS)
    retry = max(checked + pd.Timedelta(minutes=1), started + lag).ceil("min")
    evidence.status = NOT_YET_VISIBLE
    evidence.retry_after = iso_time(retry)
    evidence.message = (
        f"not yet visible: no GenerateDataKey by EMR Serverless on {expected} for session "
        f"{evidence.session_id} since it started; CloudTrail event history lags by minutes, "
        f"retry after {evidence.retry_after}"
    )
    if checked > started + lag:
        evidence.notes.append(
            "the session started more than 15 minutes ago, so the call should be visible by now:"
            " check that the session reached idle (%emr_session status, %emr_session logs)"
        )
